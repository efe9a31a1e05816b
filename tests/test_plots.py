"""Tests of utils.plots: what the figures draw, read back from the matplotlib artists."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from utils.memory import GB, MemoryTimeline  # noqa: E402
from utils.plots import Run, compare_runs, plot_memory  # noqa: E402


def test_plot_memory_puts_epoch_marks_at_the_bottom_and_other_marks_at_the_top():
    timeline = MemoryTimeline([0.0, 1.0, 2.0], [GB, 2 * GB, 2 * GB], [(0.5, "toarray done"), (1.5, "epoch 1")])
    fig, ax = plt.subplots()
    plot_memory(timeline, ax)
    annotations = {a.get_text(): a for a in ax.texts}
    assert set(annotations) == {"toarray done", "e1"}
    assert annotations["e1"].xy == (1.5, 0)
    assert annotations["toarray done"].xy == (0.5, 1)
    plt.close(fig)


def test_compare_runs_plots_each_run_as_growth_above_its_own_start():
    first = Run("first", {"val_accuracy": [0.5, 0.6]}, MemoryTimeline([0.0, 1.0], [GB, 3 * GB], []))
    second = Run("second", {"val_accuracy": [0.7]}, MemoryTimeline([0.0, 1.0], [3 * GB, 3.5 * GB], []))
    fig = compare_runs([first, second])
    memory_ax = fig.axes[1]
    lines = memory_ax.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), [0.0, 2.0])
    np.testing.assert_allclose(lines[1].get_ydata(), [0.0, 0.5])
    labels = [t.get_text() for t in memory_ax.get_legend().get_texts()]
    assert labels == ["first (+2.00 GB at peak)", "second (+0.50 GB at peak)"]
    plt.close(fig)
