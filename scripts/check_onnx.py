#!/usr/bin/env python3
"""Validate savl ONNX files: onnx.checker, the I/O contract, and onnxruntime vs tract.

usage: check_onnx.py BIN MODEL.onnx [MODEL.onnx ...]

BIN is the savl-quantize binary; its hidden `run` subcommand gives tract's output for a .npy
input. Tolerances depend on the file's `savl.precision` metadata. Exit status 1 on any failure.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

# precision -> (max |ort - tract|, min PSNR dB of tract vs ort, LR input size h, w)
TOL = {
    "f32": (1e-4, 80.0, (24, 32)),
    "f16": (2e-2, 45.0, (12, 16)),  # tract f16 is a software kernel on x86: keep it small
    "int8": (0.1, 38.0, (24, 32)),
}


def lr_input(h, w, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.5 + 0.3 * np.sin(x * 0.3 + c) * np.cos(y * 0.2) for c in range(3)])
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)
    return np.clip(img, 0, 1)[None].astype(np.float32)


def check(bin_path, path, tmp):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    meta = {p.key: p.value for p in m.metadata_props}
    prec = meta.get("savl.precision", "f32")
    max_abs, min_psnr, (h, w) = TOL[prec]
    inp = m.graph.input[0]
    in_type = inp.type.tensor_type.elem_type
    problems = []
    if inp.name != "lr" and prec != "f32":
        problems.append(f"input is `{inp.name}`, not `lr`")
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = lr_input(h, w)
    feed = x.astype(np.float16) if in_type == onnx.TensorProto.FLOAT16 else x
    out_name = "sr" if any(o.name == "sr" for o in m.graph.output) else m.graph.output[0].name
    y_ort = sess.run([out_name], {inp.name: feed})[0].astype(np.float32)
    if y_ort.shape != (1, 3, 4 * h, 4 * w):
        problems.append(f"output shape {y_ort.shape}, expected (1, 3, {4*h}, {4*w})")
    xi = os.path.join(tmp, "x.npy")
    yo = os.path.join(tmp, "y.npy")
    np.save(xi, x)
    subprocess.run([bin_path, "run", path, "--input", xi, "--output", yo, "--name", out_name], check=True)
    y_tract = np.load(yo)
    diff = np.abs(y_ort - y_tract)
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)
    if diff.max() > max_abs:
        problems.append(f"max |ort - tract| {diff.max():.3g} > {max_abs}")
    if psnr < min_psnr:
        problems.append(f"PSNR tract vs ort {psnr:.1f} dB < {min_psnr}")
    status = "FAIL" if problems else "ok"
    print(f"{status:4} {path}: {prec}, checker ok, {h}x{w} -> {y_ort.shape[2]}x{y_ort.shape[3]}, "
          f"max|ort-tract| {diff.max():.2e}, PSNR {psnr:.1f} dB" + "".join(f"\n     {p}" for p in problems))
    return not problems


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for p in sys.argv[2:]:
            try:
                ok &= check(sys.argv[1], p, tmp)
            except Exception as e:  # noqa: BLE001 — report and go on with the next file
                print(f"FAIL {p}: {type(e).__name__}: {e}")
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
