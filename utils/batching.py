"""Batch generators: the guide's appendix *Batch training*, done right for Keras 3.

The guide's appendix feeds Keras 2's ``fit_generator`` from a Python generator
that hands the model one batch at a time, so that only the batch, not the
whole training set, is ever in the model's input format. ``fit_generator`` is
gone in Keras 3: ``model.fit`` takes the generator itself (Keras accepts a
real generator object, ``types.GeneratorType``, not any iterator), together
with ``steps_per_epoch`` because the generator never ends.

:func:`batch_generator` returns that generator. It

* yields ``(x_batch, y_batch)`` forever, epoch after epoch;
* visits every sample exactly once per epoch, the last batch being partial
  when ``batch_size`` does not divide the number of samples;
* reshuffles at the start of every epoch, in an order that depends only on
  ``(seed, epoch)`` (:func:`epoch_order`): two generators with the same seed
  yield the same batches, and a generator started at epoch ``k``
  (``start_epoch=k``, for a run resumed after a crash) yields what an
  uninterrupted one yields from its ``k``-th epoch on;
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

from utils.sparse import sorted_csr

#: One batch: ``(x_batch, y_batch)``, ``x_batch`` dense or CSR.
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


def epoch_order(num_samples: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """Return the order in which epoch ``epoch`` (counted from 0) visits ``num_samples`` samples.

    A permutation drawn from ``(seed, epoch)`` alone, not from how many
    epochs a process has already drawn, so a restarted process can produce
    epoch ``epoch``'s order directly; ``0 .. num_samples - 1`` when not ``shuffle``.
    """
    if not shuffle:
        return np.arange(num_samples)
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


def resolve_seed(seed: int | None) -> int:
    """Return ``seed``, or a fresh random one for ``None`` (a different order in every run)."""
    return int(np.random.SeedSequence().entropy % 2**32) if seed is None else seed


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
        A dense ``(len(index), num_features)`` array, or CSR when ``sparse``.
    """
    if not sp.issparse(x):
        return np.asarray(x[index], dtype=dtype)
    rows = x[index]
    return sorted_csr(rows, dtype) if sparse else rows.toarray().astype(dtype, copy=False)


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
                    shuffle: bool = True, seed: int | None = 0, start_epoch: int = 0, sparse: bool = False,
                    dtype: np.dtype | type = np.float32) -> Generator[Batch, None, None]:
    """Return a generator that yields ``(x_batch, y_batch)`` forever, epoch ``start_epoch`` first.

    Args:
        x: samples, a scipy sparse matrix (any format; read as CSR) or a numpy
            array, one row per sample.
        y: labels, one per row of ``x``.
        batch_size: samples per batch, >= 1.
        shuffle: a new order every epoch (:func:`epoch_order`); otherwise rows
            come in their stored order (use this for validation and test).
        seed: seed of the shuffling; the same seed gives the same batches,
            ``None`` a different order in every run.
        start_epoch: the epoch (counted from 0) whose batches come first.
        sparse: yield CSR batches (sorted indices) instead of dense arrays.
        dtype: dtype of the ``x`` batches.

    Returns:
        A generator; pass it to ``model.fit`` with ``steps_per_epoch`` =
        :func:`steps_per_epoch` ``(len(y), batch_size)``.

    Raises:
        ValueError: ``batch_size`` < 1, empty input, ``x`` and ``y`` of
            different lengths, or ``start_epoch`` < 0.
    """
    x, y = check_batch_arguments(x, y, batch_size)
    if start_epoch < 0:
        raise ValueError(f"start_epoch must be >= 0, got {start_epoch}")
    return endless_batches(x, y, batch_size, shuffle, resolve_seed(seed), start_epoch, sparse, dtype)


def endless_batches(x: sp.csr_matrix | np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int,
                    start_epoch: int, sparse: bool, dtype: np.dtype | type) -> Generator[Batch, None, None]:
    """The endless loop behind :func:`batch_generator`: yield the batches of epoch ``start_epoch``, then the next.

    The appendix's loop (``while 1``, a slice per batch, the last one partial) with a new
    :func:`epoch_order` every epoch. It checks nothing: call :func:`batch_generator`, which
    checks the arguments first and then returns this generator.
    """
    epoch = start_epoch
    while True:
        order = epoch_order(len(y), seed, epoch, shuffle)
        for start in range(0, len(y), batch_size):
            index = order[start:start + batch_size]
            yield take_rows(x, index, sparse=sparse, dtype=dtype), y[index]
        epoch += 1
