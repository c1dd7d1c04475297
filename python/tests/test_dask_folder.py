"""examples/python/dask_folder.py on a LocalCluster (2 worker processes × 1 thread): every output
equals the CLI's for that file, pixel for pixel, and a corrupt file is reported, not fatal."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_cli

distributed = pytest.importorskip("distributed")

EXAMPLE = REPO / "examples" / "python" / "dask_folder.py"


def load_example():
    spec = importlib.util.spec_from_file_location("dask_folder", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["dask_folder"] = mod
    spec.loader.exec_module(mod)
    return mod


def make_folder(d: Path) -> list:
    d.mkdir()
    rng = np.random.default_rng(7)
    names = []
    for i, (h, w) in enumerate([(12, 16), (20, 14), (9, 9)]):
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(a, "RGB").save(d / f"pic{i}.png")
        names.append(f"pic{i}.png")
    rgba = rng.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    rgba[:, :6, 3] = 0
    Image.fromarray(rgba, "RGBA").save(d / "clear.png")
    names.append("clear.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return names


def test_folder_on_a_local_cluster_equals_the_cli(cli, tmp_path):
    mod = load_example()
    src, out, ref = tmp_path / "in", tmp_path / "out", tmp_path / "cli"
    names = make_folder(src)
    # Worker processes find `savl` where this process found it.
    import savl

    pkg_parent = str(Path(savl.__file__).resolve().parents[1])
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = pkg_parent + (os.pathsep + old if old else "")
    try:
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster, distributed.Client(cluster) as client:
            report = mod.upscale_folder(client, src, out, threads=1, timeout=300)
            # Both workers loaded their own upscaler, once.
            loaded = client.run(lambda dask_worker: dask_worker.savl_upscaler.threads)
            assert sorted(loaded.values()) == [1, 1]
            # A second run resumes: every good output exists and is skipped.
            again = mod.upscale_folder(client, src, out, threads=1, timeout=300)
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old

    assert sorted(Path(p).name for p in report.done) == sorted(names)
    assert [Path(p).name for p, _ in report.failed] == ["broken.png"]
    assert sorted(Path(p).name for p in again.skipped) == sorted(names)
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"

    p = run_cli(cli, "upscale", str(src), "--out-dir", str(ref))
    assert p.returncode == 1 and "broken.png" in p.stderr  # the CLI fails that file too
    for name in names:
        stem = Path(name).stem
        got, want = Image.open(out / f"{stem}_x4.png"), Image.open(ref / f"{stem}_x4.png")
        assert got.mode == want.mode, name
        assert np.array_equal(np.asarray(got), np.asarray(want)), name
