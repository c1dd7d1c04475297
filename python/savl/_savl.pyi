"""Type stubs of the extension module savl._savl (python/src/module.rs)."""

import os
from typing import Optional, Tuple, Union

import numpy as np

__version__: str

class SavlError(Exception):
    """Base class of every error savl raises; str(e) is the runtime's message."""

class ModelError(SavlError):
    """The model file is missing, corrupt, or does not follow the savl model contract."""

class InvalidInputError(SavlError, ValueError):
    """The picture cannot be processed: wrong dtype, shape or memory layout, or empty."""

class ConfigError(SavlError, ValueError):
    """A setting is out of range."""

    parameter: str
    value: str
    expected: str

class LimitsError(SavlError):
    """A resource limit would be exceeded."""

    what: str
    requested: int
    limit: int
    unit: str

class OutOfMemoryError(SavlError, MemoryError):
    """Memory for a buffer could not be allocated."""

class UnsupportedError(SavlError):
    """Valid but not supported by this model or build."""

class FileError(SavlError, OSError):
    """An I/O error on a file the runtime reads."""

class InferenceError(SavlError, RuntimeError):
    """Running the model failed (a bug or an engine limitation, not bad input)."""

class Upscaler:
    def __init__(
        self,
        model: Union[str, os.PathLike[str], bytes, None] = None,
        precision: str = "auto",
        tile: Optional[int] = None,
        threads: Optional[int] = None,
    ) -> None: ...
    def upscale(self, array: np.ndarray) -> np.ndarray: ...
    def inspect(self, array: np.ndarray) -> Tuple[np.ndarray, np.ndarray]: ...
    @property
    def scale(self) -> int: ...
    @property
    def precision(self) -> str: ...
    @property
    def tile(self) -> Optional[int]: ...
    def tile_for(self, width: int, height: int) -> int: ...
    @property
    def halo(self) -> int: ...
    @property
    def threads(self) -> int: ...
    @property
    def model_name(self) -> str: ...
    @property
    def has_estimate(self) -> bool: ...
    def describe(self) -> str: ...
