"""Fixtures shared by the savl Python tests.

The `savl` package is imported from wherever Python finds it: an installed wheel
(`pip install ./python`), or the source folder with the extension module copied beside it
(`.ci/run` copies `target/debug/examples/lib_savl_ext.so` to a temporary `savl/_savl.so` and
sets PYTHONPATH). The CLI the outputs are compared with is `$SAVL_CLI`, else
`target/debug/savl` of this repository.
"""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cli() -> Path:
    path = Path(os.environ.get("SAVL_CLI", REPO / "target" / "debug" / "savl"))
    if not path.is_file():
        pytest.fail(f"no savl CLI at {path}: run `cargo build -p savl-cli` or set SAVL_CLI")
    return path


@pytest.fixture(scope="session")
def upscaler():
    import savl

    return savl.Upscaler(threads=1)


def run_cli(cli: Path, *args: str) -> subprocess.CompletedProcess:
    """Runs the CLI quietly; returns the completed process (check it yourself)."""
    return subprocess.run([str(cli), *args], capture_output=True, text=True)


def cli_upscale(cli: Path, src: Path, dst: Path) -> None:
    """`savl upscale SRC -o DST`, which must succeed."""
    p = run_cli(cli, "upscale", str(src), "-o", str(dst))
    assert p.returncode == 0, f"savl upscale {src} failed: {p.stderr}"


# --- A minimal PNG reader and writer for 16-bit pictures (Pillow reads 16-bit RGB as 8 bits). ---

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def write_png(path: Path, a: np.ndarray) -> None:
    """Writes an H x W x C (C = 1..4) uint8 or uint16 array as a non-interlaced PNG."""
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    depth = 16 if a.dtype == np.uint16 else 8
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = a.astype(">u2" if depth == 16 else np.uint8).tobytes()
    row = w * c * depth // 8
    data = b"".join(b"\x00" + raw[y * row : (y + 1) * row] for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")
    )


def read_png(path: Path) -> np.ndarray:
    """Reads a non-interlaced 8- or 16-bit grey / grey+alpha / RGB / RGBA PNG as H x W x C."""
    b = path.read_bytes()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, hdr = 8, b"", None
    while pos < len(b):
        (n,) = struct.unpack(">I", b[pos : pos + 4])
        kind, body = b[pos + 4 : pos + 8], b[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, colour, _, _, interlace = hdr
    assert depth in (8, 16) and interlace == 0 and colour in _CHANNELS
    c = _CHANNELS[colour]
    bpp = c * depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            up = prev[x]
            ul = prev[x - bpp] if x >= bpp else 0
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = up
            elif f == 3:
                p = (a + up) // 2
            else:
                pa, pb, pc = abs(up - ul), abs(a - ul), abs(a + up - 2 * ul)
                p = a if pa <= pb and pa <= pc else (up if pb <= pc else ul)
            cur[x] = (line[x] + p) & 0xFF
        out[y] = cur
        prev = cur
    if depth == 16:
        return out.view(">u2").astype(np.uint16).reshape(h, w, c)
    return out.reshape(h, w, c)
