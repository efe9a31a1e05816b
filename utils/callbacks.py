"""Keras callbacks for batch training: exact validation, step timing, and what a resumable run needs.

* :class:`GeneratorValidation`: validation on a fresh, complete pass of a generator.
* :class:`StepTimer` and :func:`ms_per_step`: the series' one speed figure.
* :class:`ReseedDropout`, :class:`StartEpochCheck`, :class:`AtomicModelCheckpoint`:
  what ``BackupAndRestore`` leaves to the user for a resumed run to equal an
  uninterrupted one (chapter 08).
* :class:`PauseAt`: stops a training process at a chosen step, to be killed there.

**ms per step.** Everywhere in the series, "ms per step" is one figure:
the training time of an epoch (from its start to the end of its last train
step; validation excluded) divided by its number of steps, and the median of
that over the epochs after the first, which is warm-up (tracing, compiling,
caches filling). The first epoch is kept only when there is no other.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np

from utils.processes import commit


def ms_per_step(epoch_seconds: Sequence[float], steps: Sequence[int] | int, warmup_epochs: int = 1) -> float:
    """Return the series' ms per step: the median over the epochs after warm-up of ``1000 * seconds / steps``.

    Args:
        epoch_seconds: training seconds of each epoch (validation excluded).
        steps: train steps of each epoch, or one count for all.
        warmup_epochs: leading epochs left out (all are used when no other remains).

    Raises:
        ValueError: no epochs, lengths differ, or an epoch of no steps.
    """
    if not epoch_seconds:
        raise ValueError("no epochs timed")
    counts = [steps] * len(epoch_seconds) if isinstance(steps, int) else list(steps)
    if len(counts) != len(epoch_seconds) or min(counts) < 1:
        raise ValueError(f"need one positive step count per epoch, got {counts} for {len(epoch_seconds)} epochs")
    per_epoch = [1000.0 * s / n for s, n in zip(epoch_seconds, counts, strict=True)]
    return float(np.median(per_epoch[warmup_epochs:] or per_epoch))


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
    """Time every epoch's training steps, for :func:`ms_per_step`.

    Attributes:
        train_seconds: per epoch, seconds from its start to the end of its last train step (validation excluded).
        steps: per epoch, the train steps it ran (with ``steps_per_execution`` > 1 Keras calls back once per
            execution, naming its last step; the count is capped at the epoch's length when Keras knows it).
        epoch_seconds: per epoch, its whole duration, validation included.
    """

    def __init__(self) -> None:
        super().__init__()
        self.train_seconds: list[float] = []
        self.steps: list[int] = []
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Start timing an epoch."""
        self._epoch_start = time.perf_counter()
        self.train_seconds.append(0.0)
        self.steps.append(0)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Note the time and the number of steps done so far."""
        self.train_seconds[-1] = time.perf_counter() - self._epoch_start
        known = self.params.get("steps")
        self.steps[-1] = min(batch + 1, known) if known else batch + 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Record an epoch's whole duration."""
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)

    def ms_per_step(self, warmup_epochs: int = 1) -> float:
        """The series' ms per step over the epochs timed (:func:`ms_per_step`)."""
        return ms_per_step(self.train_seconds, self.steps, warmup_epochs)

    def ms_per_step_each_epoch(self) -> list[float]:
        """Milliseconds per step of each epoch, warm-up included: the spread behind the median."""
        return [1000.0 * s / n for s, n in zip(self.train_seconds, self.steps, strict=True)]


def seed_generator_states(model: keras.Model) -> list:
    """Return the state variables of ``model``'s random seed generators (one per dropout layer), in layer order."""
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


def epoch_seed(seed: int, index: int, epoch: int) -> int:
    """Return the seed of random stream ``index`` in epoch ``epoch`` (counted from 0): a pure function, < 2**31."""
    return int(np.random.SeedSequence([seed, index, epoch]).generate_state(1)[0] & 0x7FFF_FFFF)


class ReseedDropout(keras.callbacks.Callback):
    """Reset every seed generator of the model at the start of each epoch, from ``(seed, epoch)`` alone.

    A Keras seed generator's state is ``[seed, counter]``; each draw (one per
    training step for a dropout layer) uses it and then adds one to the
    counter. ``BackupAndRestore`` does not save that state, so a resumed
    process would start every dropout counter at 0 again and draw the masks
    of the first epochs. Setting the state of generator ``i`` to
    ``[epoch_seed(seed, i, epoch), 0]`` when epoch ``epoch`` begins makes the
    masks, like the batch order, a pure function of ``(seed, epoch)``.
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Set each seed generator's state to ``[epoch_seed(seed, i, epoch), 0]``."""
        for index, state in enumerate(seed_generator_states(self.model)):
            state.assign(np.asarray([epoch_seed(self.seed, index, epoch), 0], dtype=state.dtype))


class StartEpochCheck(keras.callbacks.Callback):
    """Fail the run if Keras resumes at another epoch than the input pipeline starts at.

    ``BackupAndRestore`` sets the starting epoch in ``on_train_begin``, after
    the generator was built; if the two disagree (a backup changed in
    between, a weights file unreadable so that Keras fell back to the
    previous backup) the run would silently train on the wrong batches.
    """

    def __init__(self, start_epoch: int) -> None:
        super().__init__()
        self.start_epoch = start_epoch
        self.checked = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Compare the first epoch Keras runs with the pipeline's."""
        if not self.checked and epoch != self.start_epoch:
            raise RuntimeError(f"Keras resumed at epoch {epoch + 1} but the input pipeline starts at epoch "
                               f"{self.start_epoch + 1}: the backup changed after it was read")
        self.checked = True


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` whose file is replaced whole: a save interrupted midway leaves the previous one.

    Keras' ``ModelCheckpoint`` writes the model straight to its file, so a
    process killed during the save leaves a truncated ``.keras`` file where
    the best model was. This one lets Keras save to a temporary name next to
    it and renames that onto ``filepath`` once the save is done (a rename is
    atomic). Saving once per epoch (the default ``save_freq``) only.

    Args:
        filepath: the checkpoint file (``.keras``, or ``.weights.h5`` with ``save_weights_only``).
        **kwargs: as for ``keras.callbacks.ModelCheckpoint``.
    """

    def __init__(self, filepath: str | os.PathLike, **kwargs) -> None:
        if kwargs.get("save_freq", "epoch") != "epoch":
            raise ValueError("AtomicModelCheckpoint saves once per epoch (save_freq='epoch')")
        self.final_path = Path(filepath)
        suffix = ".weights.h5" if self.final_path.name.endswith(".weights.h5") else self.final_path.suffix
        stem = self.final_path.name[:-len(suffix)]
        super().__init__(str(self.final_path.with_name(f".{stem}.partial{suffix}")), **kwargs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Let Keras decide and save; move a save finished in this epoch onto the checkpoint's name.

        A temporary file left by a process killed during a save is removed first, so that only a save
        completed now can ever replace the checkpoint; a save that fails removes its temporary file.
        """
        partial = Path(self.filepath)
        partial.unlink(missing_ok=True)
        try:
            super().on_epoch_end(epoch, logs)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if partial.exists():
            commit(partial, self.final_path)


class PauseAt(keras.callbacks.Callback):
    """Stop the process after training step ``step`` of epoch ``epoch`` (both from 1), to be killed there.

    The callback creates ``marker`` and then sleeps, waiting for
    :func:`utils.processes.kill_when_marked`; it gives up after ``max_wait``
    seconds and ends the process with exit status 3, so that a forgotten
    process does not linger.
    """

    def __init__(self, epoch: int, step: int, marker: Path, max_wait: float = 600.0) -> None:
        super().__init__()
        self.epoch, self.step, self.marker, self.max_wait = epoch, step, Path(marker), max_wait
        self.current = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Note the epoch (from 1)."""
        self.current = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """At the chosen step: write the marker, then wait to be killed."""
        if self.current == self.epoch and batch + 1 == self.step:
            print(f"paused after step {self.step} of epoch {self.epoch}, waiting to be killed", flush=True)
            self.marker.write_text(f"{os.getpid()}\n")
            time.sleep(self.max_wait)
            os._exit(3)
