#!/usr/bin/env python3
"""Plots the loss curves of savl training runs (train.csv files written by `savl-train train`).

    python3 scripts/plot_losses.py OUT.png LABEL=RUN_DIR [LABEL=RUN_DIR ...]

A run that was resumed appends to its train.csv, so a step can appear twice: the later row
wins. Curves are smoothed with a 25-step moving average (raw values faint behind them).
Needs matplotlib (`pip install matplotlib`).
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(run_dir):
    rows = {}
    with open(f"{run_dir}/train.csv") as f:
        for r in csv.DictReader(f):
            rows[int(r["step"])] = r
    steps = sorted(rows)
    return steps, [rows[s] for s in steps]


def smooth(v, k=25):
    out = []
    for i in range(len(v)):
        w = v[max(0, i - k + 1): i + 1]
        out.append(sum(w) / len(w))
    return out


def main():
    out, runs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    terms = [("sr_l1", "SR L1 (train batches)"), ("psnr", "SR PSNR on train batches (dB)"),
             ("rec_l1", "LM-lane reconstruction L1"), ("kl", "KL (nats / pixel)")]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, (key, title) in zip(axes.flat, terms):
        for label, d in runs:
            steps, rows = load(d)
            v = [float(r[key]) for r in rows]
            if key in ("rec_l1", "kl") and all(x == 0 for x in v):
                continue
            line, = ax.plot(steps, smooth(v), label=label)
            ax.plot(steps, v, color=line.get_color(), alpha=0.15, linewidth=0.7)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    where = os.environ.get("SAVL_PLOT_HARDWARE", "2 CPU cores")
    fig.suptitle(f"savl-lite ×4 training ({where}; see models/MODELS.md for the schedule)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
