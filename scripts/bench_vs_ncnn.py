#!/usr/bin/env python3
"""Time the savl runtime against ncnn (pip `ncnn`, CPU, default options) on the same networks,
input sizes and thread counts, and check that both compute the same thing.

Each model is given as `ONNX=NCNN_PARAM` (the `.bin` beside the `.param`): savl runs the ONNX
file, ncnn its own files of the same network (those shipped in a wheel, or converted from the
ONNX file by pnnx; `scripts/bench_vs_ncnn.sh` prepares both).

For every (model, threads, size), `--rounds` times in turn: savl (the `bench_runtime` example,
one process, median of `--runs` after 2 warm-ups) then ncnn (one `ncnn.Net` per model and
thread count, a fresh extractor per run as ncnn's own apps do, median of `--runs` after 2
warm-ups). The row shows the median over rounds of each side's medians and the ratio
savl / ncnn of those (< 1.0: savl is faster), with the range of the per-round ratios (each
round's two figures are seconds apart, so their ratio is the least disturbed by the load of a
shared machine).

Before timing a model, the output check: savl's 8-bit output (`bench_runtime --dump`) against
ncnn's output on the same 8-bit input, clipped and rounded to 8 bits the same way; the PSNR
between the two (dB, peak 255; `inf` if identical) and the largest 8-bit difference. Two
runtimes of the same network agree to ≥ 50 dB; a different network or a wrong conversion
gives < 35 dB.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import ncnn
import numpy as np


def param_blobs(param):
    """(input blob, sr output blob) of an ncnn .param: the Input layer's top; `output` (the
    wheels' name) or `out0` (pnnx's first output) if present, else the last layer's top."""
    with open(param) as f:
        lines = f.read().split("\n")[2:]
    tops, inp = [], None
    for line in lines:
        p = line.split()
        if len(p) < 4:
            continue
        n_in, n_out = int(p[2]), int(p[3])
        outs = p[4 + n_in:4 + n_in + n_out]
        tops += outs
        if p[0] == "Input":
            inp = outs[0]
    out = next((b for b in ("output", "out0") if b in tops), tops[-1])
    return inp, out


class NcnnModel:
    def __init__(self, param, threads):
        self.net = ncnn.Net()
        self.net.opt.num_threads = threads
        if self.net.load_param(param) != 0 or self.net.load_model(param[:-len(".param")] + ".bin") != 0:
            raise RuntimeError(f"ncnn cannot load {param}")
        self.inp, self.out = param_blobs(param)

    def run(self, chw):
        ex = self.net.create_extractor()
        ex.input(self.inp, ncnn.Mat(chw))
        ret, out = ex.extract(self.out)
        if ret != 0:
            raise RuntimeError(f"ncnn extract failed ({ret})")
        return out

    def median_ms(self, chw, runs):
        for _ in range(2):
            self.run(chw)
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            self.run(chw)
            ts.append((time.perf_counter() - t) * 1e3)
        return statistics.median(ts)


def savl_run(binary, onnx, size, threads, runs, extra):
    cmd = [binary, onnx, str(size), "--threads", str(threads), "--runs", str(runs), "--mallopt"] + extra
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()[-400:]}")
    return float(re.search(r"median ([0-9.]+) ms", out.stdout).group(1))


def test_input(size):
    """bench_runtime's input pattern as a float CHW array in [0, 1] (for timing only)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x = np.stack([np.floor(128 + 90 * np.sin((xx * 3 + yy * 5 + k * 17) * np.float32(0.05))) for k in range(3)])
    return np.ascontiguousarray((x / 255).astype(np.float32))


def check(binary, onnx, param, size, extra):
    """PSNR (dB) and max 8-bit difference between savl's and ncnn's outputs on one input."""
    with tempfile.TemporaryDirectory() as d:
        prefix = os.path.join(d, "x")
        savl_run(binary, onnx, size, 1, 1, extra + ["--dump", prefix])
        rgb_in = np.fromfile(f"{prefix}.{size}.in.rgb", np.uint8).reshape(size, size, 3)
        savl = np.fromfile(f"{prefix}.{size}.out.rgb", np.uint8).reshape(4 * size, 4 * size, 3)
    chw = np.ascontiguousarray(rgb_in.transpose(2, 0, 1).astype(np.float32) / 255)
    y = np.array(NcnnModel(param, 1).run(chw))
    if y.shape != (3, 4 * size, 4 * size):
        raise RuntimeError(f"ncnn output shape {y.shape}, want (3, {4 * size}, {4 * size})")
    ours = np.clip(np.rint(np.clip(y, 0, 1) * 255), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    diff = savl.astype(np.float64) - ours
    mse = float(np.mean(diff * diff))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
    return psnr, int(np.abs(diff).max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--savl-bin", required=True)
    ap.add_argument("--models", nargs="+", required=True, help="ONNX=NCNN_PARAM pairs")
    ap.add_argument("--sizes", default="128,256")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--check-size", type=int, default=64, help="input side of the output check")
    ap.add_argument("--savl-args", default="", help="extra args for bench_runtime")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    extra = a.savl_args.split()
    print(f"ncnn {ncnn.__version__} (default options); runs={a.runs}, rounds={a.rounds}; "
          "ms = median over rounds of the per-round medians; ratio = savl / ncnn "
          "(per-round range in brackets)")
    print()
    rows = []
    for spec in a.models:
        onnx, param = spec.split("=", 1)
        name = os.path.basename(onnx)
        try:
            psnr, maxd = check(a.savl_bin, onnx, param, a.check_size, extra)
            print(f"{name}: savl vs ncnn at {a.check_size}² → {4 * a.check_size}²: "
                  f"PSNR {psnr:.1f} dB, max 8-bit difference {maxd}", flush=True)
        except Exception as e:  # report and go on with the timing
            print(f"{name}: output check failed: {e}", flush=True)
        for t in threads:
            net = NcnnModel(param, t)
            for s in sizes:
                x = test_input(s)
                sv, nc = [], []
                for _ in range(a.rounds):
                    sv.append(savl_run(a.savl_bin, onnx, s, t, a.runs, extra))
                    nc.append(net.median_ms(x, a.runs))
                r = [p / q for p, q in zip(sv, nc)]
                ms, mn = statistics.median(sv), statistics.median(nc)
                rows.append(f"| {name} | {s} | {t} | {ms:.1f} | {mn:.1f} | "
                            f"{ms / mn:.2f} [{min(r):.2f}–{max(r):.2f}] |")
                print(f"  {name} {s}² {t} thread(s): savl {sv}, ncnn {[round(v, 1) for v in nc]}",
                      file=sys.stderr, flush=True)
    print()
    print("| model | LR size | threads | savl ms | ncnn ms | ratio savl/ncnn |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
