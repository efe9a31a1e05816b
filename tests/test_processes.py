"""Tests of utils.processes' fresh-process runner and staging folders (ProcessGroup is tested with the workers in
test_multi_worker.py, interrupted writes in test_interrupted_writes.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from utils.processes import ChildProcessError, remove_stale_staging, run_fresh, staging_folder


def child_pid_and_sum(*numbers: int, scale: int = 1) -> tuple[int, int]:
    """Run in the child: its pid, and the scaled sum of the arguments."""
    return os.getpid(), scale * sum(numbers)


def child_raises(message: str) -> None:
    """Run in the child: fail with ``message``."""
    raise KeyError(message)


def child_dies() -> None:
    """Run in the child: die at once without answering, as the OOM killer would make it."""
    os.kill(os.getpid(), signal.SIGKILL)


def child_sleeps(seconds: float) -> None:
    """Run in the child: sleep."""
    time.sleep(seconds)


def child_starts_a_process() -> int:
    """Run in the child: start a process of its own (a daemon may not) and return its exit code."""
    import multiprocessing

    grandchild = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    grandchild.start()
    grandchild.join()
    return grandchild.exitcode


def test_run_fresh_returns_the_result_computed_in_another_process() -> None:
    pid, total = run_fresh(child_pid_and_sum, 1, 2, 3, scale=10)
    assert total == 60
    assert pid != os.getpid()


def test_run_fresh_reports_the_childs_exception_with_its_traceback() -> None:
    with pytest.raises(ChildProcessError, match=r"child_raises in process \d+ raised:") as info:
        run_fresh(child_raises, "no such key")
    assert "KeyError: 'no such key'" in str(info.value) and "Traceback" in str(info.value)


def test_run_fresh_reports_a_child_that_died_with_its_exit_code() -> None:
    with pytest.raises(ChildProcessError, match=r"died without a result \(exit code -9\)"):
        run_fresh(child_dies)


def test_run_fresh_kills_a_child_that_runs_out_of_time() -> None:
    start = time.perf_counter()
    with pytest.raises(ChildProcessError, match="did not finish within 2 s; killed it"):
        run_fresh(child_sleeps, 60, timeout=2)
    assert time.perf_counter() - start < 20


def test_run_fresh_child_may_start_processes_only_when_not_a_daemon() -> None:
    assert run_fresh(child_starts_a_process, daemon=False) == 0
    with pytest.raises(ChildProcessError, match="daemonic processes are not allowed to have children"):
        run_fresh(child_starts_a_process)


def test_staging_folders_of_dead_processes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    mine = staging_folder(tmp_path, "cache")
    assert mine.name.startswith(f".cache-{os.getpid()}-") and mine.is_dir()
    dead = tmp_path / ".cache-999999999-abc"  # no such process id
    dead.mkdir()
    (tmp_path / "cache-1-not-staging").mkdir()
    assert remove_stale_staging(tmp_path) == [dead]
    assert mine.is_dir() and (tmp_path / "cache-1-not-staging").is_dir()
    with pytest.raises(ValueError, match="lower-case letters"):
        staging_folder(tmp_path, "Cache-1")
