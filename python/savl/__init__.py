"""savl: degradation-aware x4 super-resolution for numpy arrays and PIL images.

    >>> import numpy as np, savl
    >>> up = savl.Upscaler()                      # the model embedded in the library
    >>> lr = np.zeros((120, 160, 3), np.uint8)
    >>> up.upscale(lr).shape
    (480, 640, 3)

``Upscaler.upscale`` returns what ``savl upscale IN.png -o OUT.png`` writes, sample for sample:
grey pictures (R = G = B everywhere) stay grey, alpha is upscaled on its own (transparent
pixels' colour never bleeds), 16-bit input gives 16-bit output. The GIL is released while the
model runs, so several Python threads can upscale at once (one ``Upscaler`` may be shared).

Errors are subclasses of :class:`SavlError`, one per fault, carrying the runtime's message:
:class:`ModelError`, :class:`InvalidInputError` (also a ``ValueError``), :class:`ConfigError`
(``ValueError``), :class:`LimitsError`, :class:`OutOfMemoryError` (``MemoryError``),
:class:`UnsupportedError`, :class:`FileError` (``OSError``), :class:`InferenceError`
(``RuntimeError``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Optional, TypeVar, Union, overload

import numpy as np

from . import _savl
from ._savl import (
    ConfigError,
    FileError,
    InferenceError,
    InvalidInputError,
    LimitsError,
    ModelError,
    OutOfMemoryError,
    SavlError,
    UnsupportedError,
    __version__,
)

if TYPE_CHECKING:  # Pillow is optional
    from PIL import Image as _PILImage

__all__ = [
    "Upscaler",
    "Degradation",
    "SavlError",
    "ModelError",
    "InvalidInputError",
    "ConfigError",
    "LimitsError",
    "OutOfMemoryError",
    "UnsupportedError",
    "FileError",
    "InferenceError",
    "__version__",
]


class Degradation(NamedTuple):
    """The model's degradation maps at the input's resolution."""

    mu: np.ndarray
    """Posterior mean of the degradation code, float32, shape (d, H, W) (d = 16 for lite)."""
    severity: np.ndarray
    """Standardised severity in [-3, 3], float32, shape (H, W)."""


_T = TypeVar("_T")


class _Native(Generic[_T]):
    """A read-only attribute of :class:`Upscaler`, the native upscaler's attribute of the same
    name."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: Optional[type] = None) -> "_Native[_T]": ...

    @overload
    def __get__(self, obj: object, owner: Optional[type] = None) -> _T: ...

    def __get__(self, obj: Any, owner: Optional[type] = None) -> Any:
        if obj is None:
            return self
        return getattr(obj._native, self._name)

    def __set__(self, obj: object, value: object) -> None:
        raise AttributeError(f"{self._name} is read-only")


def _is_pil(obj: object) -> bool:
    mod = type(obj).__module__
    return mod.startswith("PIL.") and hasattr(obj, "mode") and hasattr(obj, "size")


# PIL modes taken as they are; every other mode is converted to RGB or RGBA first.
_PIL_DIRECT = {"RGB", "RGBA", "L", "LA", "I;16"}


def _from_pil(img: "_PILImage.Image") -> tuple[np.ndarray, str]:
    """The PIL image as an H x W x 3|4 array and the mode the output gets."""
    mode = img.mode
    if mode not in _PIL_DIRECT:
        has_alpha = "A" in mode or "transparency" in img.info
        mode = "RGBA" if has_alpha else "RGB"
        img = img.convert(mode)
    a = np.asarray(img)
    if mode == "L":
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif mode == "I;16":
        a = np.repeat(a.astype(np.uint16)[:, :, None], 3, axis=2)
    elif mode == "LA":
        a = np.concatenate([np.repeat(a[:, :, :1], 3, axis=2), a[:, :, 1:]], axis=2)
    return np.ascontiguousarray(a), mode


def _to_pil(a: np.ndarray, mode: str, like: "_PILImage.Image") -> "_PILImage.Image":
    from PIL import Image

    if mode == "L":
        out = Image.fromarray(np.ascontiguousarray(a[:, :, 0]), "L")
    elif mode == "I;16":
        out = Image.fromarray(np.ascontiguousarray(a[:, :, 0]), "I;16")
    elif mode == "LA":
        out = Image.fromarray(np.ascontiguousarray(a[:, :, [0, 3]]), "LA")
    else:
        out = Image.fromarray(a, mode)
    # Kept like the CLI keeps them: the colour profile and EXIF.
    for key in ("icc_profile", "exif"):
        if key in like.info:
            out.info[key] = like.info[key]
    return out


class Upscaler:
    """A loaded model, ready to upscale pictures; one may be shared by several threads.

    ``model``: a path (``str`` / ``os.PathLike``) to a savl ONNX file, the file's bytes, or
    ``None`` for the model embedded in the library. ``precision``: ``"auto"`` (the fastest on
    this CPU among those the model has), ``"f32"``, ``"f16"`` or ``"int8"``. ``tile``: a fixed tile
    side in input pixels (``None``: each picture gets the largest tile within the runtime's
    memory budget, one tile when it fits). ``threads``: worker threads
    (``None``: the CPUs, at most 16); with several upscalers or processes at once, keep their
    threads' sum at or under the cores.

    Raises :class:`ModelError` (missing or corrupt file) or :class:`ConfigError` (bad setting).
    """

    def __init__(
        self,
        model: Union[str, "os.PathLike[str]", bytes, None] = None,
        precision: str = "auto",
        tile: Optional[int] = None,
        threads: Optional[int] = None,
    ) -> None:
        self._native = _savl.Upscaler(model, precision, tile, threads)

    @overload
    def upscale(self, image: np.ndarray) -> np.ndarray: ...
    @overload
    def upscale(self, image: "_PILImage.Image") -> "_PILImage.Image": ...

    def upscale(self, image: Any) -> Any:
        """The picture upscaled by :attr:`scale`, as ``savl upscale`` writes it to PNG.

        A numpy array must be H x W x 3 (RGB) or H x W x 4 (RGBA, straight alpha), dtype
        ``uint8`` or ``uint16``, C-contiguous and not empty; the result has the same channels
        and dtype. A PIL image gives a PIL image: RGB, RGBA, L, LA and I;16 keep their mode,
        other modes are converted to RGB (RGBA when they carry transparency); the ICC profile
        and EXIF are kept. The GIL is released while the model runs.

        Raises :class:`InvalidInputError` naming a wrong type, dtype, shape or layout, and the
        runtime's errors (:class:`LimitsError` for pictures over the size limit, ...).
        """
        if _is_pil(image):
            a, mode = _from_pil(image)
            return _to_pil(self._native.upscale(a), mode, image)
        return self._native.upscale(image)

    def inspect(self, image: Any) -> Degradation:
        """The model's degradation maps of a picture (an array as :meth:`upscale` takes, or a
        PIL image), computed on its 8-bit RGB (alpha dropped), as ``savl inspect`` does.

        Raises :class:`UnsupportedError` for models without degradation outputs.
        """
        if _is_pil(image):
            image, _ = _from_pil(image)
        mu, severity = self._native.inspect(image)
        return Degradation(mu, severity)

    scale: _Native[int] = _Native("The model's scale factor (4).")
    precision: _Native[str] = _Native(
        'The precision that runs: ``"f32"``, ``"f16"`` or ``"int8"`` (never ``"auto"``).'
    )
    tile: _Native[Optional[int]] = _Native(
        "The fixed tile side in input pixels, or None when each picture gets the largest tile "
        "within the memory budget (see ``tile_for``)."
    )
    halo: _Native[int] = _Native("The tile halo in input pixels (from the model's receptive field).")
    threads: _Native[int] = _Native("Worker threads of this upscaler.")
    model_name: _Native[str] = _Native(
        "The model file loaded (``<embedded:...>`` for the embedded model)."
    )
    has_estimate: _Native[bool] = _Native(
        "Whether the model has degradation outputs (what :meth:`inspect` needs)."
    )

    def tile_for(self, width: int, height: int) -> int:
        """The tile side used for a ``width`` × ``height`` picture."""
        return self._native.tile_for(width, height)

    def describe(self) -> str:
        """Model, precision and why, CPU features, tiling and threads (as ``savl -v``)."""
        return self._native.describe()

    def __repr__(self) -> str:
        native = getattr(self, "_native", None)
        return repr(native) if native is not None else "savl.Upscaler(<not loaded>)"
