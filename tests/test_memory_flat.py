"""RSS stays flat over 20 epochs of generator-fed training: memory that creeps up epoch after epoch is caught.

The data are synthetic (a random sparse matrix of 640 rows and 2,000 features, random labels) and the model a
small MLP (``utils.models.build_mlp`` with 32 units), fed dense batches of 64 rows (512 kB each) by
``utils.batching.batch_generator``, as in chapter 02. RSS is read with psutil at the end of every epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

import numpy as np
import pytest
import scipy.sparse as sp

from utils.batching import batch_generator, steps_per_epoch
from utils.memory import MB, MemoryMonitor, growth_per_epoch

EPOCHS = 20
WARMUP = 5
BATCH_SIZE = 64
#: Bound on growth per epoch after the warm-up. A generator that keeps each batch it yields leaks
#: 10 batches x 512 kB = 5.1 MB an epoch (measured: 5.1); flat training measured 0.01 to 0.09 MB an epoch.
MAX_GROWTH_PER_EPOCH = 1 * MB


def epoch_end_rss(wrap: Callable[[Iterator], Iterator]) -> np.ndarray:
    """Train the small model for EPOCHS epochs from ``wrap(generator)``; return RSS at each epoch end."""
    import keras

    from utils.models import build_mlp

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = sp.random(640, 2000, density=0.01, format="csr", random_state=0, dtype=np.float32)
    y = rng.integers(0, 2, size=640)
    model = build_mlp(x.shape[1], 2, units=32)
    with MemoryMonitor(interval=1.0) as monitor:
        model.fit(wrap(batch_generator(x, y, BATCH_SIZE, seed=0)), steps_per_epoch=steps_per_epoch(640, BATCH_SIZE),
                  epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[monitor.keras_callback()])
    return monitor.timeline.rss_at_marks()


def leaking(batches: Iterator) -> Generator:
    """A generator that keeps a reference to every batch it yields: the leak the test must catch."""
    kept = []
    for batch in batches:
        kept.append(batch)
        yield batch


def test_rss_flat_over_20_epochs_of_generator_training() -> None:
    rss = epoch_end_rss(lambda batches: (batch for batch in batches))
    assert len(rss) == EPOCHS
    growth = growth_per_epoch(rss, WARMUP)
    assert growth < MAX_GROWTH_PER_EPOCH, f"RSS grows {growth / MB:.2f} MB per epoch: {(rss / MB).round(1)}"


def test_rss_flat_check_catches_a_generator_that_keeps_its_batches() -> None:
    """The same measurement with a leak injected fails the bound: the test above can see a leak."""
    growth = growth_per_epoch(epoch_end_rss(leaking), WARMUP)
    assert growth > MAX_GROWTH_PER_EPOCH
    assert growth == pytest.approx(5.1 * MB, rel=0.3)


def test_growth_per_epoch_is_the_slope_after_warmup() -> None:
    rss = [100, 900, 950] + [1000 + 7 * i for i in range(10)]
    assert growth_per_epoch(rss, warmup=3) == pytest.approx(7.0)
    assert growth_per_epoch([5, 5, 5, 5], warmup=1) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 2 epochs"):
        growth_per_epoch([1, 2, 3], warmup=2)
