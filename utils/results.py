"""Saving a notebook's measured results so that a later chapter can compare against them."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from utils.memory import MemoryTimeline
from utils.plots import Run

RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


def _thin(timeline: MemoryTimeline, max_points: int) -> MemoryTimeline:
    """Return the timeline with at most ``max_points`` samples, keeping the peak sample."""
    n = len(timeline.rss)
    if n <= max_points:
        return timeline
    keep = set(np.linspace(0, n - 1, max_points - 1).astype(int).tolist()) | {int(np.argmax(timeline.rss))}
    idx = sorted(keep)
    return MemoryTimeline([timeline.times[i] for i in idx], [timeline.rss[i] for i in idx], list(timeline.marks))


def save_run(name: str, run: Run, figures: dict[str, Any], results_dir: Path = RESULTS_DIR,
             max_points: int = 600) -> Path:
    """Write a run (history, thinned memory timeline) and its figures to ``<results_dir>/<name>.json``.

    The file is written to a temporary name and renamed, so a reader never sees half of it.

    Returns:
        The path written.
    """
    memory = _thin(run.memory, max_points)
    payload = {
        "label": run.label,
        "history": {k: [float(v) for v in vs] for k, vs in run.history.items()},
        "memory": {"times": memory.times, "rss": memory.rss, "marks": memory.marks},
        "figures": figures,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    fd, tmp = tempfile.mkstemp(dir=results_dir, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=1)
    os.replace(tmp, path)
    return path


def load_run(name: str, results_dir: Path = RESULTS_DIR) -> tuple[Run, dict[str, Any]]:
    """Read what :func:`save_run` wrote; return ``(run, figures)``."""
    payload = json.loads((results_dir / f"{name}.json").read_text())
    memory = MemoryTimeline(payload["memory"]["times"], payload["memory"]["rss"],
                            [tuple(m) for m in payload["memory"]["marks"]])
    return Run(payload["label"], payload["history"], memory), payload["figures"]
