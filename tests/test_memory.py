"""Tests of utils.memory: the RSS monitor, its marks and Keras callback, and the fitting-rows arithmetic.

The allocation and the model are synthetic (np.ones, a tiny Dense model on random data).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from utils.memory import MB, MemoryMonitor, MemoryTimeline, largest_fitting_rows, rss_bytes


def test_monitor_sees_300_mb_allocation() -> None:
    interval = 0.02
    with MemoryMonitor(interval=interval) as monitor:
        block = np.ones(300 * MB // 8, dtype=np.float64)  # np.ones writes every page, so they count in RSS
        time.sleep(6 * interval)
        assert block[-1] == 1.0
        del block
    timeline = monitor.timeline
    assert monitor.peak == timeline.peak
    assert timeline.peak - timeline.start >= 200 * MB
    assert len(timeline.times) == len(timeline.rss) >= 3  # start, some background samples, end
    assert timeline.times == sorted(timeline.times)


def test_monitor_samples_in_background_while_block_sleeps() -> None:
    with MemoryMonitor(interval=0.01) as monitor:
        time.sleep(0.2)
        during = len(monitor.timeline.rss)
    assert during >= 5  # the sampler thread ran while the block did nothing
    assert len(monitor.timeline.rss) >= during + 1  # plus the last sample at exit


def test_marks_recorded_inside_timeline() -> None:
    # A long interval keeps the background sampler quiet, so every sample here is one we caused.
    with MemoryMonitor(interval=10.0) as monitor:
        time.sleep(0.05)
        monitor.mark("first")
        time.sleep(0.05)
        monitor.mark("second")
    timeline = monitor.timeline
    assert [label for _, label in timeline.marks] == ["first", "second"]
    mark_times = [t for t, _ in timeline.marks]
    assert timeline.times[0] <= mark_times[0] < mark_times[1] <= timeline.times[-1]
    assert len(timeline.times) == 4  # start, one sample per mark, end
    assert mark_times == timeline.times[1:3]  # each mark takes its own sample at that moment
    assert mark_times[0] >= 0.04 and mark_times[1] - mark_times[0] >= 0.04
    assert timeline.rss_at_marks().tolist() == timeline.rss[1:3]


def test_rss_at_marks_picks_nearest_sample() -> None:
    timeline = MemoryTimeline(times=[0.0, 1.0, 2.0, 3.0], rss=[10, 20, 30, 40], marks=[(0.9, "a"), (2.6, "b")])
    assert timeline.rss_at_marks().tolist() == [20, 40]
    assert MemoryTimeline().peak == 0 and MemoryTimeline().start == 0


def test_keras_callback_marks_every_epoch() -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    with MemoryMonitor(interval=0.01) as monitor:
        model.fit(x, x[:, :1], epochs=3, batch_size=8, verbose=0, callbacks=[monitor.keras_callback()])
    assert [label for _, label in monitor.timeline.marks] == ["epoch 1", "epoch 2", "epoch 3"]
    times = [t for t, _ in monitor.timeline.marks]
    assert times == sorted(times)


def test_rss_bytes_is_plausible() -> None:
    assert 10 * MB < rss_bytes() < 64 * 1024 * MB


def test_largest_fitting_rows_fits_all() -> None:
    assert largest_fitting_rows(1_000, 100, budget_bytes=10_000_000, in_use_bytes=1_000_000, overhead=2) == 1_000


def test_largest_fitting_rows_fits_part() -> None:
    # spare = 50_000 - 10_000 = 40_000 bytes; each row costs 2 * 100 bytes -> 200 rows.
    rows = largest_fitting_rows(1_000, 100, budget_bytes=50_000, in_use_bytes=10_000, overhead=2)
    assert rows == 200
    assert 10_000 + 2 * rows * 100 <= 50_000 < 10_000 + 2 * (rows + 1) * 100
    # A fractional overhead: spare 1_000, 1.5 * 64 = 96 bytes a row -> 10 rows (10.4 rounded down).
    assert largest_fitting_rows(100, 64, budget_bytes=2_000, in_use_bytes=1_000, overhead=1.5) == 10


@pytest.mark.parametrize("in_use", [50_000, 60_000])
def test_largest_fitting_rows_nothing_when_in_use_reaches_budget(in_use: int) -> None:
    assert largest_fitting_rows(1_000, 100, budget_bytes=50_000, in_use_bytes=in_use, overhead=1) == 0


def test_largest_fitting_rows_overhead_below_one_raises() -> None:
    with pytest.raises(ValueError, match="overhead"):
        largest_fitting_rows(1_000, 100, budget_bytes=50_000, in_use_bytes=0, overhead=0.5)
    assert largest_fitting_rows(1_000, 100, budget_bytes=50_000, in_use_bytes=0, overhead=1) == 500


@pytest.mark.parametrize("interval", [0, -0.1])
def test_monitor_interval_not_positive_raises(interval: float) -> None:
    with pytest.raises(ValueError, match="interval"):
        MemoryMonitor(interval=interval)


def test_monitor_of_killed_child_process_sees_its_memory_skips_it_when_gone_and_watches_another() -> None:
    """A child process (synthetic: it allocates 200 MB, then sleeps) is sampled by pid, then SIGKILLed."""
    import os
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import numpy, time; a = numpy.ones(25_000_000); "
                              "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        with MemoryMonitor(interval=0.02, pid=child.pid) as monitor:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(0.1)
            child.kill()
            child.wait(10)
            time.sleep(0.05)
            samples = len(monitor.timeline.rss)
            time.sleep(0.2)
            assert len(monitor.timeline.rss) == samples  # nothing sampled from a process that is gone
            monitor.mark("killed")
            assert len(monitor.timeline.rss) == samples  # nor by a mark
            monitor.watch(os.getpid())
            monitor.mark("this process")
            time.sleep(0.1)
    finally:
        child.kill()
        child.wait(10)
    timeline = monitor.timeline
    assert max(timeline.rss[:samples]) >= 200 * MB  # the child's memory
    assert len(timeline.rss) >= samples + 4  # the mark, background samples, the last one at exit
    assert [label for _, label in timeline.marks] == ["killed", "this process"]
    assert timeline.times[samples - 1] < timeline.marks[0][0] < timeline.marks[1][0] == timeline.times[samples]
    assert timeline.times == sorted(timeline.times)


def test_monitor_with_children_adds_a_workers_own_memory() -> None:
    """A child process (synthetic: it allocates 200 MB of its own, then sleeps) counts only with include_children."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import numpy, time; a = numpy.ones(25_000_000); "
                              "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with MemoryMonitor(interval=0.02) as alone, MemoryMonitor(interval=0.02, include_children=True) as total:
            time.sleep(0.2)
    finally:
        child.kill()
        child.wait(10)
    assert total.peak - alone.peak >= 190 * MB  # the child's 200 MB, which no other process maps
