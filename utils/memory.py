"""Memory measurement: this process's resident set size (RSS), sampled over time.

:class:`MemoryMonitor` samples RSS with psutil in a background thread while a
``with`` block runs, and doubles as a source of Keras callbacks that mark
epoch boundaries on the timeline. RSS is what the operating system charges
the process for, so it is what the out-of-memory killer looks at.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import psutil

#: Decimal units, as the series quotes them: 1 GB = 10**9 bytes.
GB = 10**9
MB = 10**6


def rss_bytes() -> int:
    """Return this process's resident set size in bytes."""
    return psutil.Process().memory_info().rss


def available_bytes() -> int:
    """Return the memory the machine can still give processes without swapping, in bytes."""
    return psutil.virtual_memory().available


def largest_fitting_rows(num_rows: int, bytes_per_row: int, budget_bytes: int, in_use_bytes: int,
                         overhead: float) -> int:
    """Return how many rows of a dense matrix can be trained on in memory within a budget.

    Training in memory needs about ``overhead`` times the dense matrix on top
    of what the process already uses (``model.fit`` converts the arrays into
    tensors and slices batches from them); the rows that fit are those for
    which ``in_use_bytes + overhead * rows * bytes_per_row <= budget_bytes``.

    Args:
        num_rows: rows wanted (the answer is at most this).
        bytes_per_row: bytes of one dense row.
        budget_bytes: memory the process may reach.
        in_use_bytes: memory the process uses now (its RSS).
        overhead: memory needed per byte of dense matrix, >= 1.

    Returns:
        A row count between 0 and ``num_rows``.
    """
    if overhead < 1:
        raise ValueError(f"overhead must be >= 1, got {overhead}")
    spare = budget_bytes - in_use_bytes
    if spare <= 0:
        return 0
    return min(num_rows, int(spare / (overhead * bytes_per_row)))


def growth_per_epoch(rss_at_epoch_ends: np.ndarray | list[int], warmup: int = 5) -> float:
    """Return how fast RSS grows from epoch to epoch, in bytes per epoch, after ``warmup`` epochs.

    The slope of a least-squares line through RSS at the end of each epoch
    from epoch ``warmup + 1`` on: a leak of a fixed size per epoch shows as
    that size, while a one-off jump (caches warming up, the first epoch's
    graph tracing) is left out with the warm-up epochs.

    Raises:
        ValueError: fewer than two epochs remain after the warm-up.
    """
    rss = np.asarray(rss_at_epoch_ends, dtype=np.float64)[warmup:]
    if len(rss) < 2:
        raise ValueError(f"need at least 2 epochs after a warm-up of {warmup}, got {len(rss)}")
    return float(np.polyfit(np.arange(len(rss)), rss, 1)[0])


@dataclass
class MemoryTimeline:
    """RSS samples taken over time, with labelled marks (such as epoch ends).

    Attributes:
        times: seconds since the monitor started, one per sample.
        rss: RSS in bytes, one per sample.
        marks: ``(seconds, label)`` pairs.
    """

    times: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)

    @property
    def peak(self) -> int:
        """Largest RSS sampled, in bytes (0 if nothing was sampled)."""
        return max(self.rss, default=0)

    @property
    def start(self) -> int:
        """First RSS sample, in bytes (0 if nothing was sampled)."""
        return self.rss[0] if self.rss else 0

    def thinned(self, max_points: int) -> MemoryTimeline:
        """Return this timeline with at most ``max_points`` samples, evenly spaced, the peak sample always kept."""
        n = len(self.rss)
        if n <= max_points:
            return self
        keep = sorted(set(np.linspace(0, n - 1, max_points - 1).astype(int).tolist()) | {int(np.argmax(self.rss))})
        return MemoryTimeline([self.times[i] for i in keep], [self.rss[i] for i in keep], list(self.marks))

    def rss_at_marks(self) -> np.ndarray:
        """Return the RSS sampled closest in time to each mark, in bytes."""
        times = np.asarray(self.times)
        return np.asarray([self.rss[int(np.abs(times - t).argmin())] for t, _ in self.marks])


#: With ``include_children``, a :class:`MemoryMonitor` reads its children's memory every this many samples.
CHILDREN_EVERY = 10


class MemoryMonitor:
    """Sample this process's RSS every ``interval`` seconds in a background thread.

    Use it as a context manager around the code to measure; ``peak`` and
    ``timeline`` are filled in as it runs and final once the block exits::

        with MemoryMonitor() as monitor:
            model.fit(..., callbacks=[monitor.keras_callback()])
        print(monitor.peak / GB)

    Given a ``pid``, it samples that process instead (a training run started
    with ``subprocess``, say); while that process is gone (ended or killed)
    no samples are taken, and :meth:`watch` switches the same timeline to
    another process (the run's restarted process).

    Args:
        interval: seconds between samples (> 0).
        pid: process to sample; default this one.
        include_children: add the memory of the process's children (and theirs): the footprint of work that
            runs in worker processes. A child adds its USS, the pages no other process maps: a forked worker
            shares its parent's pages until one of them writes a page, and those are in the parent's RSS
            already (a page two children share but the parent does not is missed; workers of the series
            share none). Reading a child's USS means reading its ``/proc/<pid>/smaps`` (about 5 ms here), so
            the children are listed and read every :data:`CHILDREN_EVERY`-th sample only, and their last
            reading is added in between: sampling must not slow the process it measures.
    """

    def __init__(self, interval: float = 0.05, pid: int | None = None, include_children: bool = False) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        self.interval = interval
        self.include_children = include_children
        self._children_memory = 0
        self._samples = 0
        self.timeline = MemoryTimeline()
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    @property
    def peak(self) -> int:
        """Largest RSS sampled so far, in bytes."""
        return self.timeline.peak

    def _sample(self) -> bool:
        """Append one RSS sample to the timeline; return False if the process is gone."""
        try:
            rss = self._process.memory_info().rss
            children = (self._process.children(recursive=True)
                        if self.include_children and self._samples % CHILDREN_EVERY == 0 else None)
        except psutil.NoSuchProcess:  # ended or killed, and reaped
            return False
        self._samples += 1
        if children is not None:
            self._children_memory = 0
            for child in children:
                try:
                    self._children_memory += child.memory_full_info().uss
                except psutil.NoSuchProcess:  # a worker that ended between the listing and the reading
                    pass
        rss += self._children_memory
        if rss == 0:  # ended or killed, not yet reaped (a zombie): a running process always has pages
            return False
        self.timeline.times.append(time.perf_counter() - self._t0)
        self.timeline.rss.append(rss)
        return True

    def _run(self) -> None:
        """Sample until asked to stop."""
        while not self._stop.wait(self.interval):
            self._sample()

    def watch(self, pid: int) -> None:
        """From now on, sample process ``pid`` on the same timeline."""
        self._process = psutil.Process(pid)

    def mark(self, label: str) -> None:
        """Record a labelled moment on the timeline (and a sample at that moment)."""
        seconds = self.timeline.times[-1] if self._sample() else time.perf_counter() - self._t0
        self.timeline.marks.append((seconds, label))

    def __enter__(self) -> MemoryMonitor:
        """Start sampling."""
        self._t0 = time.perf_counter()
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop sampling and take a last sample."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def keras_callback(self):
        """Return a Keras callback that marks the end of every epoch on this timeline.

        Keras is imported here, not at the top: measuring memory must not load a deep-learning runtime
        into a process that does not use one (the RSS it measures would include it).
        """
        import keras

        monitor = self

        class _EpochMarks(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                monitor.mark(f"epoch {epoch + 1}")

        return _EpochMarks()
