"""Two upscales one after the other against two at once in two Python threads.

    python3 python/bench/threads.py [--size 256] [--runs 7]

Each arm uses two `savl.Upscaler(threads=1)`, one per picture; the concurrent arm starts both
calls together in two Python threads. Prints the median wall time of each arm over `--runs`
rounds (arms alternated within a round) and sequential / concurrent: about 2 on an idle
machine with two free cores if the GIL is released while the model runs, about 1 if it is not.
A benchmark, not a test: the figure depends on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import numpy as np

import savl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256, help="input side in pixels")
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()

    rng = np.random.default_rng(0)
    pics = [rng.integers(0, 256, (a.size, a.size, 3), dtype=np.uint8) for _ in range(2)]
    ups = [savl.Upscaler(threads=1) for _ in range(2)]
    for up, pic in zip(ups, pics):  # plans built, allocator warm
        up.upscale(pic)

    def sequential() -> float:
        t = time.perf_counter()
        for up, pic in zip(ups, pics):
            up.upscale(pic)
        return time.perf_counter() - t

    def concurrent() -> float:
        barrier = threading.Barrier(3)

        def one(i: int) -> None:
            barrier.wait()
            ups[i].upscale(pics[i])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        for th in threads:
            th.start()
        barrier.wait()
        t = time.perf_counter()
        for th in threads:
            th.join()
        return time.perf_counter() - t

    seq, con = [], []
    for r in range(a.runs):
        arms = [(sequential, seq), (concurrent, con)]
        for fn, out in arms if r % 2 == 0 else arms[::-1]:
            out.append(fn())
    s, c = statistics.median(seq), statistics.median(con)
    print(f"{a.size}x{a.size} -> x{ups[0].scale}, precision {ups[0].precision}, {os.cpu_count()} CPUs, {a.runs} runs")
    print(f"sequential (two upscales, one after the other): median {s * 1e3:.0f} ms  (all: {', '.join(f'{x * 1e3:.0f}' for x in seq)})")
    print(f"concurrent (two threads at once):               median {c * 1e3:.0f} ms  (all: {', '.join(f'{x * 1e3:.0f}' for x in con)})")
    print(f"sequential / concurrent: {s / c:.2f}")


if __name__ == "__main__":
    main()
