"""Batch generators: the guide's appendix *Batch training*, done right for Keras 3.

The guide densified its whole tf-idf matrix before ``model.fit`` and ran out of
memory on large datasets, so its appendix fed ``fit_generator`` from a Python
generator that densifies one batch at a time. ``fit_generator`` is gone in
Keras 3: ``model.fit`` takes the generator itself (Keras accepts a real
generator object, ``types.GeneratorType``, not any iterator), together with
``steps_per_epoch`` because the generator never ends.

:func:`batch_generator` returns that generator. It

* yields ``(x_batch, y_batch)`` forever, epoch after epoch;
* visits every sample exactly once per epoch, the last batch being partial
  when ``batch_size`` does not divide the number of samples;
* reshuffles at the start of every epoch from a seeded random generator, so
  two generators with the same seed yield the same batches;
* densifies only the batch (``sparse=True`` yields a scipy CSR batch with
  sorted indices instead, which Keras turns into a ``tf.SparseTensor``).

Its arguments are checked when it is created: the body of a generator
function only runs at the first ``next()``, so checks written inside it would
fire deep inside ``model.fit`` instead.

A generator keeps its position in ordinary local variables, so it must not be
advanced from two threads at once: CPython refuses with ``ValueError:
generator already executing``. Give each thread its own generator, or use
``keras.utils.PyDataset``, whose batches are addressed by index.
"""

from __future__ import annotations

import math
from collections.abc import Generator

import numpy as np
import scipy.sparse as sp

Batch = tuple[np.ndarray | sp.csr_matrix, np.ndarray]


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """Return the number of batches that cover ``num_samples`` once (the last may be partial).

    Raises:
        ValueError: ``num_samples`` < 1 or ``batch_size`` < 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    return math.ceil(num_samples / batch_size)


def take_rows(x: sp.csr_matrix | np.ndarray, index: np.ndarray, *, sparse: bool = False,
              dtype: np.dtype | type = np.float32) -> np.ndarray | sp.csr_matrix:
    """Return rows ``index`` of ``x`` as a batch.

    Args:
        x: CSR matrix or numpy array.
        index: row numbers, in batch order.
        sparse: for a sparse ``x``, return CSR (with sorted indices) instead of
            a dense array.
        dtype: dtype of the batch.

    Returns:
        A dense ``(len(index), n_features)`` array, or CSR when ``sparse``.
    """
    if not sp.issparse(x):
        return np.asarray(x[index], dtype=dtype)
    rows = x[index].astype(dtype, copy=False)
    if sparse:
        rows.sort_indices()
        return rows
    return rows.toarray()


def check_batch_arguments(x: sp.spmatrix | np.ndarray, y: np.ndarray,
                          batch_size: int) -> tuple[sp.csr_matrix | np.ndarray, np.ndarray]:
    """Check what a batch generator is given; return ``x`` as CSR or a numpy array, and ``y`` as an array.

    Raises:
        ValueError: ``batch_size`` < 1, empty input, or ``x`` and ``y`` of
            different lengths; the message says which and gives the numbers.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    num_samples = x.shape[0]
    if num_samples == 0:
        raise ValueError("cannot batch an empty input: x has 0 rows")
    if len(y) != num_samples:
        raise ValueError(f"length mismatch: x has {num_samples} rows but y has {len(y)} labels")
    return (sp.csr_matrix(x) if sp.issparse(x) else np.asarray(x)), np.asarray(y)


def batch_generator(x: sp.spmatrix | np.ndarray, y: np.ndarray, batch_size: int = 128, *,
                    shuffle: bool = True, seed: int | None = 0, sparse: bool = False,
                    dtype: np.dtype | type = np.float32) -> Generator[Batch, None, None]:
    """Return a generator that yields ``(x_batch, y_batch)`` forever.

    Args:
        x: samples, a scipy sparse matrix (any format; read as CSR) or a numpy
            array, one row per sample.
        y: labels, one per row of ``x``.
        batch_size: samples per batch, >= 1.
        shuffle: draw a new order at the start of every epoch; otherwise rows
            come in their stored order (use this for validation and test).
        seed: seed of the shuffling; the same seed gives the same batches.
        sparse: yield CSR batches (sorted indices) instead of dense arrays.
        dtype: dtype of the ``x`` batches.

    Returns:
        A generator; pass it to ``model.fit`` with ``steps_per_epoch`` =
        :func:`steps_per_epoch` ``(len(y), batch_size)``.

    Raises:
        ValueError: ``batch_size`` < 1, empty input, or ``x`` and ``y`` of
            different lengths.
    """
    x, y = check_batch_arguments(x, y, batch_size)
    return _batches(x, y, batch_size, shuffle, seed, sparse, dtype)


def _batches(x: sp.csr_matrix | np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool,
             seed: int | None, sparse: bool, dtype: np.dtype | type) -> Generator[Batch, None, None]:
    """The endless loop behind :func:`batch_generator` (arguments already checked)."""
    rng = np.random.default_rng(seed)
    order = np.arange(len(y))
    while True:
        if shuffle:
            order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            index = order[start:start + batch_size]
            yield take_rows(x, index, sparse=sparse, dtype=dtype), y[index]
