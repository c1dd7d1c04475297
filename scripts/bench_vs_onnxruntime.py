#!/usr/bin/env python3
"""Time the savl runtime against onnxruntime on the same ONNX files, sizes and thread counts.

For every (model, threads, size) it alternates: savl (the `bench_runtime` example, one process,
median of N runs after 2 warm-ups) then onnxruntime (CPU EP, ORT_ENABLE_ALL, same input size,
median of N after 2 warm-ups), `--rounds` times, and keeps the best median of each (the machine
is shared and noisy). Prints a Markdown table with ratio = savl / onnxruntime (≤ 1.0: savl is
as fast or faster).
"""
import argparse
import re
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort


def ort_median(path, size, threads, runs):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    chans = inp.shape[1] if isinstance(inp.shape[1], int) else 3
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x = np.stack([(128 + 90 * np.sin((xx * 3 + yy * 5 + k * 17) * 0.05)) / 255 for k in range(chans)])
    x = x[None].astype(np.float32)
    for _ in range(2):
        sess.run(None, {inp.name: x})
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {inp.name: x})
        ts.append((time.perf_counter() - t) * 1e3)
    return sorted(ts)[len(ts) // 2]


def savl_median(binary, path, size, threads, runs, extra):
    cmd = [binary, path, str(size), "--threads", str(threads), "--runs", str(runs), "--mallopt"] + extra
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()[-400:]}")
    m = re.search(r"median ([0-9.]+) ms", out.stdout)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--savl-bin", required=True)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--sizes", default="128,256")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--savl-args", default="", help="extra args for bench_runtime")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    extra = a.savl_args.split()
    print(f"onnxruntime {ort.__version__}; runs={a.runs}, rounds={a.rounds}; ms = median (best round)")
    print()
    print("| model | LR size | threads | savl ms | onnxruntime ms | ratio savl/ort |")
    print("|---|---|---|---|---|---|")
    for path in a.models:
        name = path.rsplit("/", 1)[-1]
        for t in threads:
            for s in sizes:
                best_s, best_o, err = float("inf"), float("inf"), None
                for _ in range(a.rounds):
                    try:
                        best_s = min(best_s, savl_median(a.savl_bin, path, s, t, a.runs, extra))
                    except Exception as e:  # report and go on with the other cells
                        err = str(e)
                    best_o = min(best_o, ort_median(path, s, t, a.runs))
                if err and best_s == float("inf"):
                    print(f"| {name} | {s} | {t} | error | {best_o:.1f} | - |")
                    print(f"  savl error: {err}", file=sys.stderr)
                else:
                    print(f"| {name} | {s} | {t} | {best_s:.1f} | {best_o:.1f} | {best_s / best_o:.2f} |")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
