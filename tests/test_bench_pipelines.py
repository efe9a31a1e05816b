"""Tests of bench/pipelines.py: the quick setting runs every pipeline on real IMDB data and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils import REPO_ROOT

BENCH = REPO_ROOT / "bench" / "pipelines.py"
REQUIRED = {"pipeline", "ms_per_step", "samples_per_s", "peak_rss_mb", "test_accuracy", "holds_dense_matrix"}


def run_bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the benchmark script with ``args``; return the finished process."""
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_bench_unknown_pipeline_is_an_error_naming_it() -> None:
    done = run_bench("--pipelines", "dense_in_memory,warp_drive", timeout=60)
    assert done.returncode == 2
    assert "unknown pipeline(s) warp_drive" in done.stderr


@pytest.mark.usefixtures("imdb_on_disk")
def test_bench_quick_runs_every_pipeline_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    start = time.perf_counter()
    done = run_bench("--quick", "--json", str(out))
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(out.read_text())
    names = [r["pipeline"] for r in results]
    assert "dense_in_memory" in names and "tfdata_gather" in names and "floor_sparse" in names
    for r in results:
        assert r["ms_per_step"] > 0 and r["samples_per_s"] > 0 and r["peak_rss_mb"] > 100
        assert r["holds_dense_matrix"] == (r["pipeline"] == "dense_in_memory")
        if r["floor"]:
            continue
        assert REQUIRED <= r.keys()
        assert 0.6 < r["test_accuracy"] <= 1.0, r  # 2,000 reviews, 2 epochs: well above chance
    assert "samples/s" in done.stdout and "dense_in_memory" in done.stdout  # the printed table
    assert not list(tmp_path.glob("*.partial"))
    print(f"bench --quick took {seconds:.0f} s")
