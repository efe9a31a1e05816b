"""Reading, tabulating and plotting the results of ``bench/pipelines.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

Result = dict[str, Any]


def load_results(path: str | Path) -> list[Result]:
    """Return the list of per-pipeline results written by ``bench/pipelines.py --json``."""
    return json.loads(Path(path).read_text())


def by_name(results: list[Result]) -> dict[str, Result]:
    """Return the results keyed by pipeline name."""
    return {r["pipeline"]: r for r in results}


def floor_for(result: Result, results: list[Result]) -> Result | None:
    """Return the compute-floor result with the same model input and steps per execution, if measured."""
    for r in results:
        if r["floor"] and r["model_input"] == result["model_input"] \
                and r["steps_per_execution"] == result["steps_per_execution"]:
            return r
    return None


def best_without_dense_matrix(results: list[Result]) -> Result:
    """Return the pipeline with the most samples/s among those that never hold the full dense matrix."""
    candidates = [r for r in results if not r["floor"] and not r["holds_dense_matrix"]]
    if not candidates:
        raise ValueError("no pipeline without the dense matrix in these results")
    return max(candidates, key=lambda r: r["samples_per_s"])


def format_table(results: list[Result], reference: str = "dense_in_memory") -> str:
    """Return the results as a fixed-width text table, speed and memory as ratios to ``reference``.

    Columns: ms per step, samples/s, speed ratio, input-only ms per batch
    (the pipeline iterated without training; ``-`` where Keras builds the
    batches itself), peak RSS during training, memory ratio, test accuracy.
    """
    ref = by_name(results).get(reference)
    header = (f"{'pipeline':<27} {'ms/step':>8} {'samples/s':>10} {'speed':>6} {'input ms':>8} "
              f"{'peak RSS MB':>11} {'memory':>6} {'test acc':>8}")
    lines = [header, "-" * len(header)]
    for r in results:
        speed = f"{r['samples_per_s'] / ref['samples_per_s']:.2f}x" if ref else ""
        memory = f"{r['peak_rss_mb'] / ref['peak_rss_mb']:.2f}x" if ref else ""
        input_ms = r.get("input_only_ms_per_batch")
        accuracy = r.get("test_accuracy")
        lines.append(
            f"{r['pipeline']:<27} {r['ms_per_step']:>8.2f} {r['samples_per_s']:>10.0f} {speed:>6} "
            f"{'-' if input_ms is None else f'{input_ms:.2f}':>8} {r['peak_rss_mb']:>11.0f} {memory:>6} "
            f"{'-' if accuracy is None else f'{accuracy:.4f}':>8}"
        )
    return "\n".join(lines)


def plot_pipelines(results: list[Result], title: str = "") -> Figure:
    """Plot samples/s and peak RSS of every pipeline side by side, compute floors hatched.

    Pipelines that hold the full dense matrix are drawn in red, the others in blue.
    """
    fig, (speed_ax, memory_ax) = plt.subplots(1, 2, figsize=(12, 0.35 * len(results) + 1.5), sharey=True)
    names = [r["pipeline"] for r in results]
    colors = ["C3" if r["holds_dense_matrix"] else "C0" for r in results]
    hatches = ["//" if r["floor"] else "" for r in results]
    for ax, key, label in ((speed_ax, "samples_per_s", "training samples / s (after warm-up)"),
                           (memory_ax, "peak_rss_mb", "peak RSS during training (MB)")):
        bars = ax.barh(names, [r[key] for r in results], color=colors, alpha=0.85)
        for bar, hatch in zip(bars, hatches, strict=True):
            bar.set_hatch(hatch)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    speed_ax.invert_yaxis()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
