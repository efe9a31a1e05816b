"""Grain input pipelines over an in-memory tf-idf matrix, for ``model.fit`` on any Keras backend (chapter 12).

`Grain <https://github.com/google/grain>`_ (the ``grain`` package) is the data
loader of the JAX world, and Keras 3 accepts its datasets in ``fit`` on every
backend. It needs neither TensorFlow nor PyTorch. :func:`grain_batches` builds
the same batches as chapter 04's gathered ``tf.data`` pipeline, the Grain way:

* a ``MapDataset`` of row numbers, shuffled with a seed (Grain reseeds the
  shuffle at every epoch of ``repeat``, so each epoch has a new order);
* batched into arrays of row numbers, one element per batch;
* repeated without end (``fit`` takes ``steps_per_epoch``);
* each batch's rows gathered by a ``map`` into the backend's batch: a
  ``tf.SparseTensor`` on TensorFlow, a padded ``BCOO`` on JAX, a dense array
  where sparse input is not supported (:func:`utils.sparse.to_backend_sparse`);
* with ``num_threads``, turned into an ``IterDataset`` whose ``map`` runs on
  that many threads, reading ahead.
"""

from __future__ import annotations

from typing import Any

import grain
import numpy as np
import scipy.sparse as sp

from utils.batching import check_batch_arguments, resolve_seed, take_rows
from utils.sparse import to_backend_sparse


def grain_batches(x: sp.spmatrix | np.ndarray, y: np.ndarray, batch_size: int = 128, *, shuffle: bool = True,
                  seed: int | None = 0, sparse: bool = False, num_threads: int = 0,
                  prefetch: int = 8) -> grain.MapDataset | grain.IterDataset:
    """Return an endless Grain dataset of ``(x_batch, y_batch)``, epoch after epoch, the last batch of each partial.

    Args:
        x: samples, scipy sparse (read as CSR) or a numpy array.
        y: labels, one per row of ``x``.
        batch_size: samples per batch, >= 1.
        shuffle: a new order every epoch, seeded by ``seed`` (Grain adds the epoch to it).
        seed: seed of the shuffling.
        sparse: batches as the running backend's sparse tensor, not dense float32 arrays.
        num_threads: threads that gather batches ahead of training; 0 gathers
            each batch when ``fit`` asks for it.
        prefetch: with ``num_threads``, batches gathered ahead.

    Returns:
        A ``grain.MapDataset`` (``num_threads=0``) or ``grain.IterDataset``; pass it to ``model.fit`` with
        ``steps_per_epoch`` = :func:`utils.batching.steps_per_epoch` ``(len(y), batch_size)``.

    Raises:
        ValueError: bad ``batch_size``, empty input, lengths that differ, or ``num_threads`` < 0.
    """
    x, y = check_batch_arguments(x, y, batch_size)
    if num_threads < 0:
        raise ValueError(f"num_threads must be >= 0, got {num_threads}")
    rows = grain.MapDataset.range(len(y))
    if shuffle:
        rows = rows.shuffle(seed=resolve_seed(seed))

    def gather(index: np.ndarray) -> tuple[Any, np.ndarray]:
        x_batch = take_rows(x, index, sparse=sparse)
        return (to_backend_sparse(x_batch) if sparse else x_batch), y[index]

    batches = rows.batch(batch_size).repeat().map(gather)
    if num_threads == 0:
        return batches
    return batches.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch))
