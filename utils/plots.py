"""Plots every training run of the series shows: learning curves and memory over time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from utils.memory import GB, MemoryTimeline


@dataclass
class Run:
    """What one training run leaves to plot.

    Attributes:
        label: name of the run, used in titles and legends.
        history: ``History.history`` of ``model.fit`` (``accuracy``, ``val_accuracy``, ...).
        memory: the RSS timeline sampled during the run.
    """

    label: str
    history: dict[str, list[float]]
    memory: MemoryTimeline


def plot_curves(history: dict[str, list[float]], metric: str, ax: Axes, title: str = "") -> None:
    """Plot ``metric`` and ``val_<metric>`` per epoch on ``ax``."""
    for key, style in ((metric, "o-"), (f"val_{metric}", "s--")):
        if key in history:
            values = history[key]
            ax.plot(range(1, len(values) + 1), values, style, label=key)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.grid(alpha=0.3)
    ax.legend()


def plot_memory(timeline: MemoryTimeline, ax: Axes, title: str = "memory (RSS)", label: str = "RSS",
                limit_gb: float | None = None) -> None:
    """Plot RSS over time in GB on ``ax``, with epoch marks and the peak; optionally a limit line."""
    ax.plot(timeline.times, [r / GB for r in timeline.rss], label=label)
    for seconds, mark in timeline.marks:
        # epoch marks ("e3") along the bottom; other marks ("toarray done", "fit returned") along the top,
        # so that a mark just before the first epoch stays legible
        is_epoch = mark.startswith("epoch ")
        ax.axvline(seconds, color="grey", alpha=0.3, lw=0.8)
        ax.annotate(mark.replace("epoch ", "e"), (seconds, 0 if is_epoch else 1), xycoords=("data", "axes fraction"),
                    fontsize=7, color="grey", ha="right", va="bottom" if is_epoch else "top",
                    rotation=0 if is_epoch else 90)
    ax.axhline(timeline.peak / GB, color="C3", ls=":", lw=1, label=f"peak {timeline.peak / GB:.2f} GB")
    if limit_gb is not None:
        ax.axhline(limit_gb, color="k", ls="--", lw=1, label=f"budget {limit_gb:.1f} GB")
    ax.set_xlabel("seconds")
    ax.set_ylabel("GB")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_run(run: Run) -> Figure:
    """One row for one run: accuracy, loss and memory over time."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    plot_curves(run.history, "accuracy", axes[0], f"{run.label}: accuracy")
    plot_curves(run.history, "loss", axes[1], f"{run.label}: loss")
    plot_memory(run.memory, axes[2], f"{run.label}: memory (RSS)")
    fig.tight_layout()
    return fig


def compare_runs(runs: Sequence[Run]) -> Figure:
    """Runs side by side: validation accuracy per epoch, and memory growth over time on a shared GB scale.

    Memory is each run's RSS **above its own first sample**: runs made one after another in one process
    start from different levels (a process rarely gives memory back to the system), so their absolute RSS
    would not compare; what each run added does.
    """
    fig, (acc_ax, mem_ax) = plt.subplots(1, 2, figsize=(13, 4))
    for i, run in enumerate(runs):
        values = run.history.get("val_accuracy", [])
        acc_ax.plot(range(1, len(values) + 1), values, "o-", color=f"C{i}", label=run.label)
        growth = [(r - run.memory.start) / GB for r in run.memory.rss]
        mem_ax.plot(run.memory.times, growth, color=f"C{i}",
                    label=f"{run.label} (+{(run.memory.peak - run.memory.start) / GB:.2f} GB at peak)")
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    acc_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    mem_ax.set(xlabel="seconds since the run started", ylabel="GB above the run's start",
               title="memory (RSS) growth during training")
    for ax in (acc_ax, mem_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
