"""Upscale a folder of pictures with Dask distributed: one machine or many.

    python examples/python/dask_folder.py IN_DIR OUT_DIR                  # a LocalCluster here
    python examples/python/dask_folder.py IN_DIR OUT_DIR --workers 4 --threads 2
    python examples/python/dask_folder.py IN_DIR OUT_DIR --scheduler tcp://host:8786

Every picture of IN_DIR (not recursive) becomes OUT_DIR/<stem>_x4.png, the same pixels as
`savl upscale IN_DIR --out-dir OUT_DIR` writes (decoded by Pillow, EXIF orientation applied).

Model loading: each worker *process* loads one `savl.Upscaler` when it starts
(`SavlPlugin`, a Dask WorkerPlugin), and every task on that worker uses it; the model is never
pickled or sent with the tasks. An `Upscaler` may be shared by the worker's task threads (the GIL
is released while it runs).

Threads: a worker process runs `threads_per_worker` tasks at once, and each `upscale` call
uses up to `--threads` runtime threads. Keep, per machine,
`workers × threads_per_worker × --threads ≤ cores`: `--workers N --threads 1` (the default:
one process per core, one picture at a time each) spreads pictures; fewer workers with more
threads use less memory (one model working set per process) for the same cores.

Outputs are written to a temporary file in OUT_DIR and renamed, so a killed run never leaves
a half-written picture under a final name; existing outputs are skipped unless --force (so a
rerun resumes). A picture that cannot be read or upscaled is reported at the end and does not
stop the others; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

from distributed import Client, LocalCluster, WorkerPlugin, get_worker, wait

# The extensions `savl upscale` reads from a folder.
EXTENSIONS = {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".gif"}


class SavlPlugin(WorkerPlugin):
    """Loads one `savl.Upscaler` per worker process, at worker start-up."""

    name = "savl-upscaler"

    def __init__(self, model: Optional[str] = None, precision: str = "auto", threads: int = 1):
        self.model, self.precision, self.threads = model, precision, threads

    def setup(self, worker) -> None:
        import savl

        worker.savl_upscaler = savl.Upscaler(
            model=self.model, precision=self.precision, threads=self.threads
        )


def output_path(src: Path, out_dir: Path) -> Path:
    """Where `savl upscale SRC --out-dir OUT_DIR` writes at the default scale."""
    return out_dir / f"{src.stem}_x4.png"


def upscale_file(src: str, dst: str, force: bool) -> Tuple[str, str, str]:
    """One picture, on a worker: returns (src, "done" | "skipped" | "failed", message)."""
    from PIL import Image, ImageOps

    out = Path(dst)
    if out.exists() and not force:
        return src, "skipped", "exists"
    try:
        up = get_worker().savl_upscaler
        with Image.open(src) as im:
            im = ImageOps.exif_transpose(im)
            hr = up.upscale(im)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".tmp", dir=out.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                hr.save(f, format="PNG")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, out)
        except BaseException:
            os.unlink(tmp)
            raise
        return src, "done", f"{hr.size[0]}x{hr.size[1]}"
    except Exception as e:  # reported at the end; the batch goes on
        return src, "failed", f"{type(e).__name__}: {e}"


@dataclass
class Report:
    """What happened to every input."""

    done: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    failed: List[Tuple[str, str]] = field(default_factory=list)


def upscale_folder(
    client: Client,
    in_dir: Path,
    out_dir: Path,
    model: Optional[str] = None,
    precision: str = "auto",
    threads: int = 1,
    force: bool = False,
    timeout: Optional[float] = None,
) -> Report:
    """Upscales every picture of `in_dir` into `out_dir` on the cluster behind `client`;
    `timeout` (seconds) bounds the wait for the whole batch (`TimeoutError` past it)."""
    # Workers need not have this file: the scheduler sends it to every worker (also to those
    # that join later), so the plugin and the task function unpickle by reference there.
    client.upload_file(__file__)
    out_dir.mkdir(parents=True, exist_ok=True)
    client.register_plugin(SavlPlugin(model, precision, threads))
    inputs = sorted(p for p in in_dir.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
    futures = [
        client.submit(upscale_file, str(p), str(output_path(p, out_dir)), force, pure=False)
        for p in inputs
    ]
    wait(futures, timeout=timeout)
    report = Report()
    for src, status, msg in client.gather(futures):
        if status == "done":
            report.done.append(src)
        elif status == "skipped":
            report.skipped.append(src)
        else:
            report.failed.append((src, msg))
    return report


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("in_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--scheduler", help="address of a running Dask scheduler (default: a LocalCluster here)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="LocalCluster worker processes")
    ap.add_argument("--threads", type=int, default=1, help="runtime threads per Upscaler")
    ap.add_argument("--model", help="ONNX model file (default: the embedded model)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--force", action="store_true", help="replace existing outputs")
    a = ap.parse_args(argv)
    if a.scheduler:
        client = Client(a.scheduler)
    else:
        cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
    # Run as a script, this file is `__main__`, which workers cannot import: use it as the
    # module `dask_folder` (what upload_file gives the workers).
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import dask_folder

    with client:
        r = dask_folder.upscale_folder(client, a.in_dir, a.out_dir, a.model, a.precision, a.threads, a.force)
    print(f"{len(r.done)} done, {len(r.skipped)} skipped, {len(r.failed)} failed")
    for src, why in r.failed:
        print(f"  failed: {src}: {why}", file=sys.stderr)
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
