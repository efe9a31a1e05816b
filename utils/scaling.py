"""Growth curves fitted to the scaling sweep, and what they predict for larger corpora (chapter 07).

``bench/scaling.py`` measures, for each approach and training-set size ``n``,
the peak RSS of a fresh process and the time per epoch. This module fits a
straight line ``a + b·n`` to each (:func:`fit_growth`) and extrapolates it to
the corpora of :data:`utils.datasets.REGISTRY` (:func:`extrapolate`), with a
verdict per memory budget. A straight line is the honest model here: an
in-memory approach holds something proportional to ``n``, a streaming one
holds a fixed amount (its slope comes out near zero), and an epoch visits
every document once.

The approaches of chapters 01–04 are measured as training only, from
precomputed features; before training they must read and vectorize the texts
in memory too. :func:`extrapolate` therefore adds the in-memory vectorizing
step's growth (its peak above its starting RSS) to their training peak: both
happen in one process in chapters 01–04, with the texts still held.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The sweep's name for the in-memory vectorizing step, and for chapter 05's pipeline.
VECTORIZING = "in_memory_vectorizing"
STREAMING = "streaming_from_disk"
#: Memory budgets of the verdicts, in GB (decimal, as :data:`utils.memory.GB`).
BUDGETS_GB = (8, 16, 64)


@dataclass(frozen=True)
class LinearFit:
    """``value = intercept + slope * n``, least squares over the measured points.

    Attributes:
        intercept: value at ``n = 0``.
        slope: growth per document.
        sizes: the measured ``n``.
        values: the measured values.
    """

    intercept: float
    slope: float
    sizes: tuple[int, ...]
    values: tuple[float, ...]

    def predict(self, n: float | np.ndarray) -> float | np.ndarray:
        """Return the fitted value at ``n`` documents."""
        return self.intercept + self.slope * np.asarray(n, dtype=float) if np.ndim(n) else \
            self.intercept + self.slope * float(n)

    @property
    def largest_measured(self) -> int:
        """The largest measured ``n``: predictions beyond it are extrapolation."""
        return max(self.sizes)


def fit_line(sizes: Sequence[float], values: Sequence[float]) -> LinearFit:
    """Fit ``intercept + slope * n`` to the points by least squares.

    Raises:
        ValueError: fewer than two distinct sizes, or lengths differ.
    """
    if len(sizes) != len(values):
        raise ValueError(f"{len(sizes)} sizes but {len(values)} values")
    if len(set(sizes)) < 2:
        raise ValueError(f"need at least two distinct sizes to fit a line, got {sorted(set(sizes))}")
    slope, intercept = np.polyfit(np.asarray(sizes, dtype=float), np.asarray(values, dtype=float), 1)
    return LinearFit(float(intercept), float(slope), tuple(int(s) for s in sizes), tuple(float(v) for v in values))


def load_sweep(path: str | Path) -> list[dict[str, Any]]:
    """Read the JSON list written by ``bench/scaling.py --json``."""
    return json.loads(Path(path).read_text())


def approaches_in(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """Return the approaches of ``results`` in the order they first appear."""
    return list(dict.fromkeys(r["approach"] for r in results))


def series(results: Iterable[Mapping[str, Any]], approach: str, key: str) -> tuple[list[int], list[float]]:
    """Return ``(sizes, values)`` of ``key`` for ``approach``, sorted by size, skipping missing values."""
    points = sorted((r["train_size"], r[key]) for r in results if r["approach"] == approach and r.get(key) is not None)
    return [p[0] for p in points], [float(p[1]) for p in points]


def fit_growth(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, LinearFit]]:
    """Fit memory (``peak_rss_mb``) and time per epoch (``epoch_median_seconds``; the vectorizing step's
    ``seconds``) against training-set size, per approach.

    Returns:
        ``{approach: {"memory": LinearFit, "time": LinearFit}}`` for each approach measured at two or more sizes.
    """
    fits = {}
    for approach in approaches_in(results):
        time_key = "seconds" if approach == VECTORIZING else "epoch_median_seconds"
        sizes, memory = series(results, approach, "peak_rss_mb")
        if len(set(sizes)) < 2:
            continue
        fits[approach] = {"memory": fit_line(sizes, memory), "time": fit_line(*series(results, approach, time_key))}
    return fits


def vectorizing_start_mb(results: Iterable[Mapping[str, Any]]) -> float:
    """Return the median starting RSS of the vectorizing step's processes (what is not the step's own memory)."""
    starts = [r["start_rss_mb"] for r in results if r["approach"] == VECTORIZING]
    if not starts:
        raise ValueError(f"no {VECTORIZING!r} points in the results")
    return float(np.median(starts))


def required_mb(approach: str, n: float, fits: Mapping[str, Mapping[str, LinearFit]],
                vectorizing_start: float) -> float:
    """Return the predicted peak RSS in MB of ``approach`` on ``n`` documents.

    For the approaches that vectorize in memory first (all but the streaming one
    and the vectorizing step itself), the vectorizing step's growth is added.
    """
    need = float(fits[approach]["memory"].predict(n))
    if approach not in (STREAMING, VECTORIZING) and VECTORIZING in fits:
        need += float(fits[VECTORIZING]["memory"].predict(n)) - vectorizing_start
    return need


@dataclass(frozen=True)
class Prediction:
    """One row of the extrapolation table.

    Attributes:
        dataset: registry name.
        documents: training documents.
        approach: the sweep's approach name.
        peak_gb: predicted peak RSS in GB.
        fits: budget in GB -> whether ``peak_gb`` fits in it.
        epoch_seconds: predicted seconds per epoch.
        extrapolated: ``documents`` lies beyond the largest measured size.
    """

    dataset: str
    documents: int
    approach: str
    peak_gb: float
    fits: dict[int, bool]
    epoch_seconds: float
    extrapolated: bool


def extrapolate(results: Sequence[Mapping[str, Any]], corpora: Mapping[str, int],
                budgets_gb: Sequence[int] = BUDGETS_GB) -> list[Prediction]:
    """Predict peak memory and time per epoch of every trained approach on every corpus.

    Args:
        results: the sweep's results (must include the vectorizing step).
        corpora: dataset name -> number of training documents (e.g. from ``REGISTRY[...].train_size``).
        budgets_gb: memory budgets of the verdicts.

    Returns:
        One :class:`Prediction` per corpus and approach (the vectorizing step is folded into the others).
    """
    fits = fit_growth(results)
    start = vectorizing_start_mb(results)
    rows = []
    for dataset, documents in corpora.items():
        for approach, fit in fits.items():
            if approach == VECTORIZING:
                continue
            peak_gb = required_mb(approach, documents, fits, start) / 1000
            rows.append(Prediction(dataset, documents, approach, peak_gb, {b: peak_gb <= b for b in budgets_gb},
                                   max(float(fit["time"].predict(documents)), 0.0),
                                   documents > fit["memory"].largest_measured))
    return rows


def format_duration(seconds: float) -> str:
    """Return ``seconds`` as a short human duration: ``"42 s"``, ``"7.5 min"``, ``"3.2 h"``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_predictions(rows: Sequence[Prediction], budgets_gb: Sequence[int] = BUDGETS_GB) -> str:
    """Return the predictions as a fixed-width text table, extrapolated rows marked ``*``."""
    header = f"{'dataset':<17}{'documents':>10}  {'approach':<22}{'peak GB':>9}" + "".join(
        f"{f'{b} GB':>7}" for b in budgets_gb) + f"{'epoch':>10}"
    lines = [header, "-" * len(header)]
    for row in rows:
        mark = "*" if row.extrapolated else " "
        lines.append(f"{row.dataset:<17}{row.documents:>10,}{mark} {row.approach:<22}{row.peak_gb:>9.1f}" + "".join(
            f"{'yes' if row.fits[b] else 'no':>7}" for b in budgets_gb) + f"{format_duration(row.epoch_seconds):>10}")
    return "\n".join(lines)


def plot_growth(results: Sequence[Mapping[str, Any]], fits: Mapping[str, Mapping[str, LinearFit]], quantity: str,
                ax=None):
    """Plot measured points and fitted lines of ``quantity`` (``"memory"`` or ``"time"``) for every approach.

    Memory is peak RSS in GB; time is seconds per epoch (the vectorizing step's one-off seconds for it).
    Returns the figure.
    """
    import matplotlib.pyplot as plt

    if quantity not in ("memory", "time"):
        raise ValueError(f"quantity must be 'memory' or 'time', got {quantity!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    for i, (approach, fit) in enumerate(fits.items()):
        line = fit[quantity]
        scale = 1000 if quantity == "memory" else 1
        ax.plot(line.sizes, [v / scale for v in line.values], "o", color=f"C{i}", label=approach)
        grid = np.linspace(0, line.largest_measured, 50)
        ax.plot(grid, line.predict(grid) / scale, "-", color=f"C{i}", alpha=0.6, lw=1)
    ax.set_xlabel("training documents")
    ax.set_ylabel("peak RSS, GB" if quantity == "memory" else "seconds per epoch (vectorizing: once)")
    ax.set_title(("peak memory" if quantity == "memory" else "time per epoch") + " against training-set size: "
                 "measured (points), fitted a + b·n (lines)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax.figure
