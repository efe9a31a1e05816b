"""Tests of utils.callbacks: exact validation from generators (GeneratorValidation) and StepTimer.

The problem is synthetic: dense Gaussian features, a linear rule for the labels, and a validation set of
70 rows, which batches of 32 do not divide.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np
import pytest

from utils.batching import batch_generator, steps_per_epoch
from utils.callbacks import GeneratorValidation, StepTimer, ms_per_step
from utils.models import build_mlp

pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True` was passed:UserWarning")

FEATURES = 10
BATCH = 32


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of Gaussian features, label 1 where a fixed linear function is positive."""
    x = np.random.default_rng(seed).normal(size=(n, FEATURES)).astype(np.float32)
    w = np.linspace(-1.0, 1.0, FEATURES)
    return x, (x @ w > 0).astype(np.int64)


class EvaluateWholeArrays(keras.callbacks.Callback):
    """Placed after GeneratorValidation: records the epoch's logs and ``evaluate`` on the whole arrays."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        super().__init__()
        self.x, self.y = x, y
        self.logs: list[dict] = []
        self.whole: list[dict] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.logs.append(dict(logs or {}))
        self.whole.append(self.model.evaluate(self.x, self.y, batch_size=len(self.y), verbose=0, return_dict=True))


def make_validation(x_val: np.ndarray, y_val: np.ndarray) -> tuple[GeneratorValidation, list[int]]:
    """A GeneratorValidation over (x_val, y_val), and a list counting the generators it asked for."""
    made: list[int] = []

    def make_batches() -> Iterator:
        made.append(1)
        return batch_generator(x_val, y_val, BATCH, shuffle=False)

    return GeneratorValidation(make_batches, steps_per_epoch(len(y_val), BATCH)), made


def test_generator_validation_equals_evaluate_on_whole_arrays_every_epoch() -> None:
    keras.utils.set_random_seed(0)
    x_train, y_train = synthetic(200, seed=1)
    x_val, y_val = synthetic(70, seed=2)
    assert len(y_val) % BATCH != 0
    validation, made = make_validation(x_val, y_val)
    check = EvaluateWholeArrays(x_val, y_val)
    model = build_mlp(FEATURES, 2, units=8, learning_rate=1e-2)
    epochs = 3
    history = model.fit(batch_generator(x_train, y_train, BATCH, seed=0), steps_per_epoch=steps_per_epoch(200, BATCH),
                        epochs=epochs, verbose=0, callbacks=[validation, check])
    assert len(made) == epochs  # a fresh generator for every validation pass
    assert len(check.logs) == epochs
    for logs, whole in zip(check.logs, check.whole, strict=True):
        assert abs(logs["val_loss"] - whole["loss"]) < 1e-6
        assert abs(logs["val_accuracy"] - whole["accuracy"]) < 1e-6
    assert history.history["val_loss"] == pytest.approx([w["loss"] for w in check.whole], abs=1e-6)
    assert history.history["val_accuracy"] == pytest.approx([w["accuracy"] for w in check.whole], abs=1e-6)
    assert len(set(history.history["val_loss"])) == epochs  # the model changed between epochs


def test_early_stopping_after_generator_validation_monitors_val_loss() -> None:
    """min_delta=10 makes every epoch after the first "no improvement": stops after epoch 2 iff it sees val_loss."""
    keras.utils.set_random_seed(0)
    x_train, y_train = synthetic(96, seed=1)
    x_val, y_val = synthetic(40, seed=2)
    validation, _ = make_validation(x_val, y_val)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)
    model = build_mlp(FEATURES, 2, units=8)
    history = model.fit(batch_generator(x_train, y_train, BATCH), steps_per_epoch=3, epochs=6, verbose=0,
                        callbacks=[validation, stopper])
    assert len(history.history["loss"]) == 2
    assert stopper.stopped_epoch == 1
    assert stopper.best == pytest.approx(history.history["val_loss"][0])


def test_step_timer_counts_steps_and_times_training_of_every_epoch() -> None:
    keras.utils.set_random_seed(0)
    x_train, y_train = synthetic(150, seed=1)  # 5 steps of 32, the last partial
    steps = steps_per_epoch(150, BATCH)
    timer = StepTimer()
    model = build_mlp(FEATURES, 2, units=8)
    model.fit(batch_generator(x_train, y_train, BATCH), steps_per_epoch=steps, epochs=3, verbose=0,
              callbacks=[timer])
    assert steps == 5
    assert timer.steps == [steps] * 3
    assert len(timer.epoch_seconds) == len(timer.train_seconds) == 3
    for whole, training in zip(timer.epoch_seconds, timer.train_seconds, strict=True):
        assert 0 < training <= whole
    per_epoch = timer.ms_per_step_each_epoch()
    assert timer.ms_per_step() == pytest.approx(float(np.median(per_epoch[1:])))
    assert per_epoch[1] == pytest.approx(1000 * timer.train_seconds[1] / steps)


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_step_timer_counts_every_step_with_steps_per_execution(steps_per_execution: int) -> None:
    """Keras calls back once per execution of 4 steps, naming the last: 10 steps are 3 calls, still 10 steps."""
    x_train, y_train = synthetic(320, seed=2)
    timer = StepTimer()
    model = build_mlp(FEATURES, 2, units=8, steps_per_execution=steps_per_execution)
    model.fit(x_train, y_train, batch_size=BATCH, epochs=2, verbose=0, callbacks=[timer])
    assert timer.steps == [10, 10]


def test_ms_per_step_is_the_median_epoch_after_warm_up_and_falls_back() -> None:
    assert ms_per_step([5.0, 0.2, 0.4, 0.3], 100) == pytest.approx(3.0)  # 2, 4, 3 ms: warm-up epoch left out
    assert ms_per_step([5.0, 0.2, 0.4], [100, 100, 50], warmup_epochs=0) == pytest.approx(8.0)  # 50, 2, 8 ms
    assert ms_per_step([0.02], 10) == pytest.approx(2.0)  # only one epoch: all of it
    with pytest.raises(ValueError, match="one positive step count per epoch"):
        ms_per_step([1.0, 2.0], [10])
    with pytest.raises(ValueError, match="no epochs"):
        ms_per_step([], 10)
