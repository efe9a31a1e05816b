"""Saving a notebook's measured results so that a later chapter can compare against them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from utils import REPO_ROOT
from utils.memory import MemoryTimeline
from utils.plots import Run
from utils.processes import write_json

RESULTS_DIR = REPO_ROOT / "results"


def save_run(name: str, run: Run, figures: dict[str, Any], results_dir: Path = RESULTS_DIR,
             max_points: int = 600) -> Path:
    """Write a run (history, thinned memory timeline) and its figures to ``<results_dir>/<name>.json``.

    The file is replaced whole (:func:`utils.processes.write_json`).

    Returns:
        The path written.
    """
    memory = run.memory.thinned(max_points)
    payload = {
        "label": run.label,
        "history": {k: [float(v) for v in vs] for k, vs in run.history.items()},
        "memory": {"times": memory.times, "rss": memory.rss, "marks": memory.marks},
        "figures": figures,
    }
    return write_json(results_dir / f"{name}.json", payload)


def load_run(name: str, results_dir: Path = RESULTS_DIR) -> tuple[Run, dict[str, Any]]:
    """Read what :func:`save_run` wrote; return ``(run, figures)``."""
    payload = json.loads((results_dir / f"{name}.json").read_text())
    memory = MemoryTimeline(payload["memory"]["times"], payload["memory"]["rss"],
                            [tuple(m) for m in payload["memory"]["marks"]])
    return Run(payload["label"], payload["history"], memory), payload["figures"]
