"""savl.Upscaler against the CLI (byte for byte), its argument checks, errors, maps, threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import savl
from conftest import REPO, cli_upscale, read_png, run_cli, write_png

SAMPLE = REPO / "assets" / "sample.png"


def gradient(h: int, w: int, c: int = 3, dtype=np.uint8) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    top = 65535 if dtype == np.uint16 else 255
    chans = [(x * 7 + y * 3) % 256, (x * 2 + y * 11) % 256, (x * y) % 256, (x * 5 + 40) % 256]
    a = np.stack(chans[:c], axis=2).astype(np.float64) / 255.0 * top
    return np.ascontiguousarray(a.round().astype(dtype))


# --- Byte for byte against `savl upscale` ---


def test_sample_png_equals_the_cli(cli, upscaler, tmp_path):
    out = tmp_path / "sample_x4.png"
    cli_upscale(cli, SAMPLE, out)
    want = np.asarray(Image.open(out))
    lr = np.asarray(Image.open(SAMPLE))
    got = upscaler.upscale(lr)
    assert got.dtype == np.uint8 and got.shape == (480, 640, 3)
    assert np.array_equal(got, want)
    # A PIL image in gives a PIL image out, with the same pixels.
    pil = upscaler.upscale(Image.open(SAMPLE))
    assert isinstance(pil, Image.Image) and pil.mode == "RGB" and pil.size == (640, 480)
    assert np.array_equal(np.asarray(pil), want)


def half_transparent(h: int, w: int, dtype=np.uint8) -> np.ndarray:
    """Left half clear (with red hidden under it), right half opaque, a soft band between."""
    top = 65535 if dtype == np.uint16 else 255
    a = gradient(h, w, 4, dtype)
    a[:, : w // 2, :3] = [top, 0, 0]
    alpha = np.clip((np.arange(w) - w / 2 + 2) / 4.0, 0.0, 1.0)
    a[:, :, 3] = (alpha[None, :] * top).round().astype(dtype)
    return a


def test_rgba_equals_the_cli_and_keeps_alpha(cli, upscaler, tmp_path):
    rgba = half_transparent(20, 24)
    src, out = tmp_path / "rgba.png", tmp_path / "rgba_x4.png"
    Image.fromarray(rgba, "RGBA").save(src)
    cli_upscale(cli, src, out)
    want = Image.open(out)
    assert want.mode == "RGBA"
    got = upscaler.upscale(rgba)
    assert got.shape == (80, 96, 4) and got.dtype == np.uint8
    assert np.array_equal(got, np.asarray(want))
    # Clear stays exactly clear, opaque exactly opaque.
    assert (got[:, :30, 3] == 0).all() and (got[:, 66:, 3] == 255).all()


def test_opaque_alpha_is_dropped_like_the_cli_and_comes_back_opaque(cli, upscaler, tmp_path):
    rgba = gradient(16, 20, 4)
    rgba[:, :, 3] = 255
    src, out = tmp_path / "opaque.png", tmp_path / "opaque_x4.png"
    Image.fromarray(rgba, "RGBA").save(src)
    cli_upscale(cli, src, out)
    want = Image.open(out)
    assert want.mode == "RGB"  # the CLI drops an alpha channel that carries nothing
    got = upscaler.upscale(rgba)
    assert got.shape == (64, 80, 4)
    assert np.array_equal(got[:, :, :3], np.asarray(want)) and (got[:, :, 3] == 255).all()


def test_grey_in_grey_out_like_the_cli(cli, upscaler, tmp_path):
    grey = gradient(14, 18, 1)[:, :, 0]
    src, out = tmp_path / "grey.png", tmp_path / "grey_x4.png"
    Image.fromarray(grey, "L").save(src)
    cli_upscale(cli, src, out)
    want = np.asarray(Image.open(out))
    assert want.ndim == 2
    # As an RGB array with R = G = B: every channel is the CLI's grey.
    got = upscaler.upscale(np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2)))
    for c in range(3):
        assert np.array_equal(got[:, :, c], want)
    # As a PIL "L" image: an "L" image.
    pil = upscaler.upscale(Image.open(src))
    assert pil.mode == "L" and np.array_equal(np.asarray(pil), want)


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_equals_the_cli(cli, upscaler, tmp_path, channels):
    a = half_transparent(10, 12, np.uint16) if channels == 4 else gradient(10, 12, 3, np.uint16)
    a[0, 0, 0] = 12345  # a value 8 bits cannot hold
    src, out = tmp_path / "deep.png", tmp_path / "deep_x4.png"
    write_png(src, a)
    assert np.array_equal(read_png(src), a)
    cli_upscale(cli, src, out)
    want = read_png(out)
    got = upscaler.upscale(a)
    assert got.dtype == np.uint16 and got.shape == (40, 48, channels)
    assert np.array_equal(got, want)
    # Not just 8 bits widened: some samples are not multiples of 257.
    assert (got[:, :, :3] % 257 != 0).any()


# --- Argument checks ---


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int16, np.uint32, np.float64])
def test_bad_dtypes_are_named(upscaler, dtype):
    a = np.zeros((8, 8, 3), dtype)
    with pytest.raises(savl.InvalidInputError, match=f"unsupported dtype.*{np.dtype(dtype).name}.*uint8 or uint16"):
        upscaler.upscale(a)


@pytest.mark.parametrize(
    "shape, shown",
    [((8, 8), r"\(8, 8\)"), ((8, 8, 2), r"\(8, 8, 2\)"), ((8, 8, 5), r"\(8, 8, 5\)"), ((2, 8, 8, 3), r"\(2, 8, 8, 3\)"), ((64,), r"\(64,\)")],
)
def test_bad_shapes_are_named(upscaler, shape, shown):
    with pytest.raises(savl.InvalidInputError, match=f"unsupported shape {shown}.*H×W×3.*H×W×4"):
        upscaler.upscale(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("shape", [(0, 5, 3), (5, 0, 3), (0, 0, 4)])
def test_empty_arrays_are_refused(upscaler, shape):
    with pytest.raises(savl.InvalidInputError, match="empty array"):
        upscaler.upscale(np.zeros(shape, np.uint8))


def test_non_contiguous_arrays_are_refused(upscaler):
    a = gradient(8, 16)
    for view in (a[:, ::2], a[::2], np.asfortranarray(a), a.transpose(1, 0, 2)):
        with pytest.raises(savl.InvalidInputError, match="not C-contiguous.*ascontiguousarray"):
            upscaler.upscale(view)
    # The contiguous copy it suggests works, and equals upscaling that copy.
    ok = upscaler.upscale(np.ascontiguousarray(a[:, ::2]))
    assert ok.shape == (32, 32, 3)


def test_other_types_are_refused(upscaler):
    with pytest.raises(savl.InvalidInputError, match="expected an H×W×3.*got list"):
        upscaler.upscale([[[0, 0, 0]]])
    # Errors are ValueErrors and SavlErrors too.
    with pytest.raises(ValueError):
        upscaler.upscale(np.zeros((4, 4), np.uint8))
    with pytest.raises(savl.SavlError):
        upscaler.upscale(np.zeros((4, 4), np.uint8))


# --- The runtime's errors as Python exceptions ---


def test_bad_settings_raise_config_error_with_the_runtimes_message():
    with pytest.raises(savl.ConfigError) as e:
        savl.Upscaler(precision="bogus")
    assert str(e.value) == "invalid configuration: precision `bogus` must be one of auto, f32, f16, int8"
    assert (e.value.parameter, e.value.value, e.value.expected) == ("precision", "`bogus`", "one of auto, f32, f16, int8")
    with pytest.raises(savl.ConfigError) as e:
        savl.Upscaler(threads=0)
    assert e.value.parameter == "threads" and str(e.value).startswith("invalid configuration: threads 0 must be")
    assert isinstance(e.value, ValueError) and isinstance(e.value, savl.SavlError)


def test_model_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.onnx"
    # A missing file is the runtime's I/O error (FileError, an OSError), naming the file.
    with pytest.raises(savl.FileError, match=f"^{missing}: No such file") as e:
        savl.Upscaler(model=missing)
    assert isinstance(e.value, OSError) and isinstance(e.value, savl.SavlError)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(savl.ModelError, match=f"model {bad}"):
        savl.Upscaler(model=str(bad))
    with pytest.raises(savl.ModelError, match="model <bytes>"):
        savl.Upscaler(model=b"garbage")
    with pytest.raises(savl.ConfigError, match="model must be a path"):
        savl.Upscaler(model=12)


def test_model_from_bytes_and_path_equal_the_embedded_one():
    path = REPO / "models" / "savl-lite-x4.onnx"
    lr = gradient(12, 10)
    want = savl.Upscaler(threads=1, precision="f32").upscale(lr)
    assert np.array_equal(savl.Upscaler(model=path, precision="f32", threads=1).upscale(lr), want)
    assert np.array_equal(savl.Upscaler(model=path.read_bytes(), precision="f32", threads=1).upscale(lr), want)


def test_properties(upscaler):
    assert upscaler.scale == 4 and upscaler.threads == 1
    assert upscaler.precision in ("f32", "f16", "int8") and upscaler.tile is None and upscaler.halo >= 12
    # Without a fixed tile, a small picture is one tile.
    assert upscaler.tile_for(80, 60) == 80
    assert upscaler.model_name.startswith("<embedded") and upscaler.has_estimate
    assert "precision" in upscaler.describe()
    fixed = savl.Upscaler(tile=64, threads=1)
    assert fixed.tile == 64 and fixed.tile_for(80, 60) == 64


# --- Degradation maps ---


def test_inspect_returns_maps_of_the_documented_shapes(upscaler):
    lr = np.asarray(Image.open(SAMPLE))
    d = upscaler.inspect(lr)
    assert isinstance(d, savl.Degradation)
    assert d.mu.dtype == np.float32 and d.mu.shape == (16, 120, 160)
    assert d.severity.dtype == np.float32 and d.severity.shape == (120, 160)
    assert np.isfinite(d.mu).all() and np.isfinite(d.severity).all()
    assert d.severity.min() >= -3.0 - 1e-5 and d.severity.max() <= 3.0 + 1e-5
    assert d.mu.std() > 0  # a real map, not a constant
    # Tuple-unpackable; PIL input gives the same maps; RGBA is read as its RGB.
    mu, sev = upscaler.inspect(Image.open(SAMPLE))
    assert np.array_equal(mu, d.mu) and np.array_equal(sev, d.severity)
    rgba = np.concatenate([lr, np.full(lr.shape[:2] + (1,), 7, np.uint8)], axis=2)
    assert np.array_equal(upscaler.inspect(rgba).severity, d.severity)


def test_inspect_checks_its_argument_like_upscale(upscaler):
    with pytest.raises(savl.InvalidInputError, match="unsupported dtype"):
        upscaler.inspect(np.zeros((4, 4, 3), np.float32))


# --- Threads ---


def test_two_threads_at_once_give_the_single_thread_results():
    shared = savl.Upscaler(threads=1)
    inputs = [gradient(40, 56), np.ascontiguousarray(gradient(40, 56)[::-1])]
    want = [shared.upscale(a) for a in inputs]
    for upscalers in ([shared, shared], [savl.Upscaler(threads=1), savl.Upscaler(threads=1)]):
        results: list = [None, None]
        errors: list = []
        barrier = threading.Barrier(2)

        def work(i: int) -> None:
            try:
                barrier.wait()
                for _ in range(2):
                    results[i] = upscalers[i].upscale(inputs[i])
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        for got, w in zip(results, want):
            assert np.array_equal(got, w)


def test_the_gil_is_released_while_upscaling():
    """The main thread runs Python code while another thread is inside upscale."""
    up = savl.Upscaler(threads=1)
    lr = gradient(96, 96)
    span: list = []
    done = threading.Event()

    def upscale() -> None:
        span.append(time.perf_counter())
        up.upscale(lr)
        span.append(time.perf_counter())
        done.set()

    ticks: list = []
    t = threading.Thread(target=upscale)
    t.start()
    while not done.is_set():
        ticks.append(time.perf_counter())  # runs only while the other thread lets the GIL go
    t.join()
    start, end = span
    third = (end - start) / 3
    assert third > 0.005, "upscale too short to tell"
    # With the GIL held for the whole call, no tick could fall in its middle third.
    middle = [x for x in ticks if start + third <= x <= end - third]
    assert len(middle) > 100
