#!/usr/bin/env python3
"""`savl upscale` on one photo, whole process, against onnxruntime's session + run on the same
model in-process.

    python3 scripts/bench_photo_vs_onnxruntime.py --savl-bin target/release/savl \
        [--model models/savl-lite-x4.onnx] [--size 320x240] [--runs 7]

savl's figure is everything a user waits for: process start, loading the embedded model (its
load-time rewrites and plans), decoding the PNG, upscaling, encoding the ×4 PNG and writing it.
onnxruntime's figure is only `InferenceSession(model)` plus one `run` of the same picture as a
float32 NCHW array (no Python start, no PNG decoding or encoding), with its default options and
threads. The two alternate, savl first, `--runs` times after one warm-up each; the script prints
each side's median and the median of the pairwise ratios savl / onnxruntime (≤ 1: savl's whole
process is no slower than onnxruntime's session and run alone). The photo is smooth content plus
noise, like a camera picture (made here, with a fixed seed).
"""
import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


def make_photo(path: Path, w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(x / 17.0)[..., None] * np.cos(y / 23.0)[..., None] * np.ones(3)
    img = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)
    return img


def savl_once(binary: str, photo: Path, out: Path) -> float:
    t = time.perf_counter()
    subprocess.run([binary, "upscale", str(photo), "-o", str(out), "--force", "-q"], check=True)
    return time.perf_counter() - t


def ort_once(model: str, x: np.ndarray) -> float:
    t = time.perf_counter()
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    sess.run(["sr"], {sess.get_inputs()[0].name: x})
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--savl-bin", required=True)
    ap.add_argument("--model", default="models/savl-lite-x4.onnx")
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        photo, out = Path(tmp, "photo.png"), Path(tmp, "out.png")
        img = make_photo(photo, w, h)
        x = (img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
        savl_once(a.savl_bin, photo, out)
        ort_once(a.model, x)
        pairs = [(savl_once(a.savl_bin, photo, out), ort_once(a.model, x)) for _ in range(a.runs)]
        with Image.open(out) as o:
            assert o.size == (4 * w, 4 * h), o.size
    s = statistics.median(p[0] for p in pairs)
    o = statistics.median(p[1] for p in pairs)
    r = statistics.median(p[0] / p[1] for p in pairs)
    print(f"{w}x{h}, {a.runs} pairs, onnxruntime {ort.__version__}, model {a.model}")
    print(f"savl upscale, whole process:        median {s * 1e3:8.1f} ms")
    print(f"onnxruntime session + run, in-process: median {o * 1e3:8.1f} ms")
    print(f"ratio savl / onnxruntime (median of pairs): {r:.3f}")


if __name__ == "__main__":
    main()
