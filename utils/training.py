"""Keras callbacks for batch training: exact validation from generators, and step timing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import keras
import numpy as np


class GeneratorValidation(keras.callbacks.Callback):
    """Validate on one fresh, complete pass of a generator at the end of every epoch.

    ``model.fit(..., validation_data=generator)`` is unreliable in Keras 3:
    Keras peeks at the first two batches of a generator to learn their shapes
    and chains them back in front of it every time it restarts the validation
    iterator, which it does every epoch, while the batches its prefetch pulled
    ahead are dropped. From the second epoch on, validation sees a shifted
    window of batches: some samples twice, others not at all.

    This callback builds a new generator for each validation pass instead,
    runs ``model.evaluate`` for exactly ``steps`` batches, and writes the
    results into the epoch's logs as ``val_<metric>``, where ``History``,
    ``EarlyStopping`` and ``ModelCheckpoint`` find them. Put it before those
    callbacks in the list.

    Args:
        make_batches: zero-argument function returning a new generator that
            starts at the first validation batch (not shuffled).
        steps: number of batches in one pass over the validation set.
    """

    def __init__(self, make_batches: Callable[[], Iterator], steps: int) -> None:
        super().__init__()
        self.make_batches = make_batches
        self.steps = steps

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Evaluate on a full validation pass and add ``val_*`` entries to ``logs``."""
        results = self.model.evaluate(self.make_batches(), steps=self.steps, verbose=0, return_dict=True)
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in results.items()})


class StepTimer(keras.callbacks.Callback):
    """Record the wall-clock time of every training step and every epoch.

    Attributes:
        step_seconds: one list per epoch, the duration of each training step.
        epoch_seconds: duration of each epoch, validation included.
    """

    def __init__(self) -> None:
        super().__init__()
        self.step_seconds: list[list[float]] = []
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Start timing an epoch."""
        self._epoch_start = time.perf_counter()
        self.step_seconds.append([])

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Start timing a step."""
        self._step_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Record a step's duration."""
        self.step_seconds[-1].append(time.perf_counter() - self._step_start)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Record an epoch's duration."""
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)

    def ms_per_step(self, skip_epochs: int = 1) -> float:
        """Median milliseconds per training step, leaving out the first ``skip_epochs`` (warm-up).

        Falls back to all epochs when there are no more than ``skip_epochs``.
        """
        epochs = self.step_seconds[skip_epochs:] or self.step_seconds
        return 1000.0 * float(np.median(np.concatenate(epochs)))
