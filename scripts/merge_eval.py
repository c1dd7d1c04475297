#!/usr/bin/env python3
"""Rebuilds the "All methods" tables of docs/EVAL.md from the raw eval outputs in docs/eval/.

    python3 scripts/merge_eval.py [docs/EVAL.md]

For each LR mode (hetero, homo, bicubic) and set (set5, set14) it merges, in this order: the
bicubic row of `peers-MODE.md`, the savl rows of `savl-MODE.md` (the `--limit 2` run, if there,
becomes "savl (f32), same 2 images as f16"), then the other rows of `peers-MODE.md`. The result
replaces the text between `<!-- eval-tables:begin -->` and `<!-- eval-tables:end -->`.
`scripts/eval_all.sh` writes the inputs; rerun this after it.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL_DIR = os.path.join(ROOT, "docs", "eval")
MODES = ["hetero", "homo", "bicubic"]
SETS = ["set5", "set14"]
HEADER = re.compile(r"^### (\w+) ×4, LR = (\w+).*?, (\d+) images")
BEGIN, END = "<!-- eval-tables:begin -->", "<!-- eval-tables:end -->"


def tables(path):
    """[(set, images, [row lines])] in file order."""
    out, cur = [], None
    for line in open(path):
        line = line.rstrip("\n")
        if m := HEADER.match(line):
            cur = (m.group(1), int(m.group(3)), [])
            out.append(cur)
        elif cur is not None and line.startswith("| ") and not line.startswith("| method"):
            cur[2].append(line)
    return out


def main():
    doc = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs", "EVAL.md")
    parts = []
    for mode in MODES:
        peers = tables(os.path.join(EVAL_DIR, f"peers-{mode}.md"))
        savl = tables(os.path.join(EVAL_DIR, f"savl-{mode}.md"))
        for s in SETS:
            prow = [r for (st, _, rows) in peers if st == s for r in rows]
            full = [t for t in savl if t[0] == s]
            if not prow or not full:
                sys.exit(f"merge_eval: no {s} table for {mode} in docs/eval/")
            rows = [r for r in prow if r.startswith("| bicubic")]
            main_rows = full[0][2]
            same2 = [r.replace("| savl (f32) |", "| savl (f32), same 2 images as f16 |", 1)
                     for (_, n, rr) in full[1:] if n == 2 for r in rr]
            for r in main_rows:
                rows.append(r)
                if r.startswith("| savl-f16"):
                    rows.extend(same2)
            rows += [r for r in prow if not r.startswith("| bicubic")]
            parts.append(f"#### {s}, LR = {mode}\n\n"
                         "| method | PSNR-Y (dB) ↑ | SSIM-Y ↑ | SSIMULACRA2 ↑ | ms / image | images |\n"
                         "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    text = open(doc).read()
    if BEGIN not in text or END not in text:
        sys.exit(f"merge_eval: {doc} has no {BEGIN} … {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    open(doc, "w").write(head + BEGIN + "\n\n" + "\n".join(parts) + "\n" + END + tail)
    print(f"merge_eval: {len(parts)} tables into {doc}")


if __name__ == "__main__":
    main()
