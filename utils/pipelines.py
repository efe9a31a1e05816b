"""``tf.data`` input pipelines for a tf-idf matrix held in memory.

Three ways to get the same batches into ``model.fit``, from the most Python to
the least:

* :func:`from_generator_dataset` wraps the chapter 02 generator in
  ``tf.data.Dataset.from_generator``: the batches are still built in Python,
  one at a time, holding the GIL.
* :func:`sparse_slices_dataset` hands the whole matrix to TensorFlow as one
  ``tf.SparseTensor`` and lets ``tf.data`` slice, shuffle and batch it
  sample by sample.
* :func:`gathered_dataset` keeps the matrix in TensorFlow as two ragged
  tensors (column indices and values per row, which is exactly CSR) and
  builds each batch with one vectorised gather inside the graph: one
  ``tf.data`` element per batch, no Python per batch, nothing densified.

All three yield ``(tf.SparseTensor, labels)`` for a model built with
``build_mlp(..., sparse_input=True)`` (``densify=True`` gives dense batches for
the guide's dense-input model instead).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from utils.batching import batch_generator, check_batch_arguments
from utils.pydataset import csr_to_tf_sparse

AUTOTUNE = tf.data.AUTOTUNE


def _as_csr(x: sp.spmatrix) -> sp.csr_matrix:
    """Return ``x`` as float32 CSR with sorted indices (copying only if needed)."""
    x = sp.csr_matrix(x, dtype=np.float32)
    if not x.has_sorted_indices:
        x = x.copy()
        x.sort_indices()
    return x


def from_generator_dataset(x: sp.spmatrix, y: np.ndarray, batch_size: int = 128, *, shuffle: bool = True,
                           seed: int | None = 0) -> tf.data.Dataset:
    """Return an endless dataset of sparse batches produced by the chapter 02 generator.

    ``output_signature`` tells TensorFlow the type and shape of every element
    up front (``from_generator`` cannot look inside a Python generator);
    ``[None, n_features]`` because the last batch of an epoch is smaller.
    Pass ``steps_per_epoch`` to ``fit``, as with the bare generator.

    Args:
        x: samples, scipy sparse.
        y: labels, one per row.
        batch_size, shuffle, seed: as for :func:`utils.batching.batch_generator`.

    Returns:
        A ``tf.data.Dataset`` of ``(tf.SparseTensor float32, labels)`` batches, prefetched.
    """
    x, y = check_batch_arguments(_as_csr(x), y, batch_size)
    label_dtype = tf.as_dtype(y.dtype)

    def batches() -> Iterator[tuple[tf.SparseTensor, np.ndarray]]:
        for x_batch, y_batch in batch_generator(x, y, batch_size, shuffle=shuffle, seed=seed, sparse=True):
            yield csr_to_tf_sparse(x_batch), y_batch

    signature = (tf.SparseTensorSpec(shape=[None, x.shape[1]], dtype=tf.float32),
                 tf.TensorSpec(shape=[None], dtype=label_dtype))
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(AUTOTUNE)


def sparse_slices_dataset(x: sp.spmatrix, y: np.ndarray, batch_size: int = 128, *, shuffle: bool = True,
                          seed: int | None = 0) -> tf.data.Dataset:
    """Return one epoch of sparse batches sliced by ``tf.data`` from a single ``tf.SparseTensor``.

    ``from_tensor_slices`` on a ``tf.SparseTensor`` yields one sparse row per
    element; ``shuffle`` (a buffer as large as the data, reshuffled every
    epoch) and ``batch`` then reassemble sparse batches. No Python runs per
    batch, but every sample is a separate element to shuffle and batch.

    Returns:
        A ``tf.data.Dataset`` of ``(tf.SparseTensor float32, labels)`` batches, prefetched.
    """
    x, y = check_batch_arguments(_as_csr(x), y, batch_size)
    dataset = tf.data.Dataset.from_tensor_slices((csr_to_tf_sparse(x), y))
    if shuffle:
        dataset = dataset.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(AUTOTUNE)


def gathered_dataset(x: sp.spmatrix, y: np.ndarray, batch_size: int = 128, *, shuffle: bool = True,
                     seed: int | None = 0, densify: bool = False) -> tf.data.Dataset:
    """Return one epoch of batches gathered inside the TensorFlow graph from CSR held as ragged tensors.

    The pipeline shuffles and batches only the row numbers (cheap integers),
    then one ``map`` call per batch gathers those rows' column indices and
    values, turns them into a ``tf.SparseTensor`` (or a dense batch), and
    looks up the labels. ``num_parallel_calls`` and ``prefetch`` let
    ``tf.data`` build the next batches on its own threads, outside the GIL,
    while the model trains on the current one.

    Args:
        x: samples, scipy sparse.
        y: labels, one per row.
        batch_size: samples per batch, >= 1.
        shuffle: reshuffle the rows every epoch (seeded by ``seed``).
        seed: seed of the shuffling.
        densify: yield dense float32 batches instead of ``tf.SparseTensor``.

    Returns:
        A ``tf.data.Dataset`` of ``(x_batch, labels)``, one element per batch.
    """
    x, y = check_batch_arguments(_as_csr(x), y, batch_size)
    row_splits = tf.constant(x.indptr.astype(np.int64))
    columns = tf.RaggedTensor.from_row_splits(tf.constant(x.indices.astype(np.int64)), row_splits)
    values = tf.RaggedTensor.from_row_splits(tf.constant(x.data), row_splits)
    labels = tf.constant(y)
    num_features = x.shape[1]

    def gather(rows: tf.Tensor) -> tuple[tf.SparseTensor | tf.Tensor, tf.Tensor]:
        batch_columns = tf.gather(columns, rows)
        positions = batch_columns.to_sparse()  # indices: (row in batch, position in row); values: column
        batch = tf.SparseTensor(
            indices=tf.stack([positions.indices[:, 0], positions.values], axis=1),
            values=tf.gather(values, rows).flat_values,
            dense_shape=tf.stack([tf.size(rows, out_type=tf.int64), num_features]),
        )
        return (tf.sparse.to_dense(batch) if densify else batch), tf.gather(labels, rows)

    rows = tf.data.Dataset.range(len(y))
    if shuffle:
        rows = rows.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return rows.batch(batch_size).map(gather, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def constant_batch_dataset(x_batch: tf.Tensor | tf.SparseTensor, y_batch: np.ndarray) -> tf.data.Dataset:
    """Return the same pre-built batch forever: no input work, for measuring the compute floor of a train step."""
    return tf.data.Dataset.from_tensors((x_batch, tf.constant(y_batch))).repeat()
