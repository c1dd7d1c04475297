#!/usr/bin/env python3
"""PSNR-Y on the heterogeneous eval sets against training crops seen, for savl and its
no-guidance ablation, from the checkpoints the training legs left behind.

    python3 scripts/quality_curve.py OUT.png POINTS.txt [--csv OUT.csv] [--threads N]
                                     [--degrade hetero|bicubic] [--mark CROPS:LABEL]

POINTS.txt has one line per checkpoint pair, blank lines and `#` comments ignored:

    CROPS  FULL_CHECKPOINT  NOGUIDE_CHECKPOINT

CROPS is the number of training crops both models had seen at that checkpoint (legs may use
different batch sizes, so steps alone do not compare). Each checkpoint is exported to ONNX (EMA
weights) in a temporary folder and scored by `savl-train eval --degrade hetero --seed 0` on Set5
and Set14 (or `--degrade bicubic`, clean bicubic LR), the same protocol as the tables in
models/MODELS.md; bicubic upscaling and, for hetero, the issue's target (bicubic + 1.0 dB) are
drawn as lines; `--mark` draws a vertical line where a training leg changed the recipe. Rows already in the CSV (same crops and
checkpoints) are reused, so a rerun only scores new points. Needs matplotlib and a built
`target/debug/savl-train` (`cargo build -p savl-train`).
"""
import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "debug", "savl-train")
SETS = ["set5", "set14"]
EVAL = os.path.join(ROOT, "..", "shared", "data", "eval")
ROW = re.compile(r"^\| (\S+) \(f32\) \| ([0-9.]+) \|")
BICUBIC = re.compile(r"^\| bicubic \(CatmullRom\) \| ([0-9.]+) \|")
HEADER = re.compile(r"^### (\w+) ×4")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"quality_curve: {' '.join(cmd)} failed:\n{r.stderr}")
    return r.stdout


def score(models, threads, with_bicubic, degrade):
    """PSNR-Y per (label, set) from one eval run over both sets."""
    cmd = [BIN, "eval", "--set", ",".join(os.path.join(EVAL, s) for s in SETS),
           "--degrade", degrade, "--seed", "0", "--threads", str(threads),
           "--methods", ("bicubic,models" if with_bicubic else "models"),
           "--model", ",".join(f"{k}={v}" for k, v in models.items())]
    out, cur = {}, None
    for line in run(cmd).splitlines():
        if m := HEADER.match(line):
            cur = m.group(1)
        elif m := ROW.match(line):
            out[(m.group(1), cur)] = float(m.group(2))
        elif m := BICUBIC.match(line):
            out[("bicubic", cur)] = float(m.group(1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("png")
    ap.add_argument("points")
    ap.add_argument("--csv", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--degrade", choices=["hetero", "bicubic"], default="hetero")
    ap.add_argument("--mark", action="append", default=[], help="CROPS:LABEL")
    a = ap.parse_args()
    points = []
    for line in open(a.points):
        line = line.split("#")[0].strip()
        if line:
            crops, full, noguide = line.split()
            points.append((int(crops), full, noguide))
    csv_path = a.csv or os.path.splitext(a.png)[0] + ".csv"
    done = {}
    if os.path.exists(csv_path):
        for r in csv.DictReader(open(csv_path)):
            done[(int(r["crops"]), r["full"], r["noguide"])] = r
    rows, bicubic = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (crops, full, noguide) in enumerate(points):
            key = (crops, full, noguide)
            if key in done:
                r = done[key]
                rows.append(r)
                for s in SETS:
                    bicubic[s] = float(r[f"bicubic_{s}"])
                continue
            models = {}
            for label, ck in (("full", full), ("noguide", noguide)):
                onnx = os.path.join(tmp, f"{label}-{i}.onnx")
                run([BIN, "export", ck, "-o", onnx])
                models[label] = onnx
            got = score(models, a.threads, not bicubic, a.degrade)
            for s in SETS:
                bicubic.setdefault(s, got.get(("bicubic", s)))
            r = {"crops": crops, "full": full, "noguide": noguide}
            for s in SETS:
                r[f"full_{s}"] = got[("full", s)]
                r[f"noguide_{s}"] = got[("noguide", s)]
                r[f"bicubic_{s}"] = bicubic[s]
            print(f"{crops:>7} crops: " + ", ".join(
                f"{s} full {r[f'full_{s}']:.2f} noguide {r[f'noguide_{s}']:.2f}" for s in SETS),
                flush=True)
            rows.append(r)
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)

    fig, axes = plt.subplots(1, len(SETS), figsize=(11, 4), sharex=True)
    x = [int(r["crops"]) / 1000 for r in rows]
    for ax, s in zip(axes, SETS):
        b = bicubic[s]
        ax.plot(x, [float(r[f"full_{s}"]) for r in rows], "o-", label="savl (full)")
        ax.plot(x, [float(r[f"noguide_{s}"]) for r in rows], "s--", label="noguide")
        ax.axhline(b, color="grey", lw=1, label=f"bicubic {b:.2f}")
        if a.degrade == "hetero":
            ax.axhline(b + 1.0, color="red", lw=1, ls=":", label=f"target {b + 1.0:.2f}")
        lr = "heterogeneous LR (seed 0)" if a.degrade == "hetero" else "bicubic LR"
        ax.set_title(f"{s.capitalize()}, {lr}")
        for m in a.mark:
            c, label = m.split(":", 1)
            ax.axvline(int(c) / 1000, color="green", lw=1, ls="-.")
            ax.annotate(label, (int(c) / 1000, b), xytext=(3, 3), textcoords="offset points",
                        fontsize=8, color="green")
        ax.set_xlabel("training crops seen (thousands)")
        ax.set_ylabel("PSNR-Y (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("savl-lite ×4: eval PSNR-Y against training crops, "
                 + os.environ.get("SAVL_PLOT_HARDWARE", "2-core CPU"))
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)
    print(f"wrote {a.png} and {csv_path}")


if __name__ == "__main__":
    main()
