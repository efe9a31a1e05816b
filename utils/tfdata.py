"""``tf.data`` input pipelines: over a tf-idf matrix held in memory, and over files on disk.

``model.fit`` takes a ``tf.data.Dataset`` and, unlike a Python generator,
re-iterates it from the start at every epoch and for every validation pass,
so it can be passed as ``validation_data`` safely.

**In memory.** Three ways to get the same batches into ``model.fit``, from the
most Python to the least:

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
the guide's dense-input model instead). :func:`constant_batch_dataset` repeats
one batch, to measure the train step with no input work at all.

**From disk.** :func:`text_dataset`, :func:`vectorized_text_batches`,
:func:`sparse_batch_dataset` and :func:`cached_feature_batches` wrap a function
that starts a new pass over files with ``tf.data.Dataset.from_generator``:
TensorFlow calls that function again at each iteration, so nothing is read
before it is needed and nothing is kept after, and ``prefetch`` reads the next
batch while the model trains on the current one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from utils import streaming
from utils.batching import Batch, batch_generator, check_batch_arguments, steps_per_epoch
from utils.feature_cache import FeatureCache
from utils.sparse import NSE_MULTIPLE, sorted_csr, to_tf_sparse

AUTOTUNE = tf.data.AUTOTUNE


def from_generator_dataset(x: sp.spmatrix, y: np.ndarray, batch_size: int = 128, *, shuffle: bool = True,
                           seed: int | None = 0) -> tf.data.Dataset:
    """Return an endless dataset of sparse batches produced by the chapter 02 generator.

    ``output_signature`` tells TensorFlow the type and shape of every element
    up front (``from_generator`` cannot look inside a Python generator);
    ``[None, num_features]`` because the last batch of an epoch is smaller.
    Pass ``steps_per_epoch`` to ``fit``, as with the bare generator.

    Args:
        x: samples, scipy sparse.
        y: labels, one per row.
        batch_size, shuffle, seed: as for :func:`utils.batching.batch_generator`.

    Returns:
        A ``tf.data.Dataset`` of ``(tf.SparseTensor float32, labels)`` batches, prefetched.
    """
    x, y = check_batch_arguments(sorted_csr(x), y, batch_size)
    label_dtype = tf.as_dtype(y.dtype)

    def batches() -> Iterator[tuple[tf.SparseTensor, np.ndarray]]:
        for x_batch, y_batch in batch_generator(x, y, batch_size, shuffle=shuffle, seed=seed, sparse=True):
            yield to_tf_sparse(x_batch), y_batch

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
    x, y = check_batch_arguments(sorted_csr(x), y, batch_size)
    dataset = tf.data.Dataset.from_tensor_slices((to_tf_sparse(x), y))
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
    x, y = check_batch_arguments(sorted_csr(x), y, batch_size)
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


def pad_for_jax(dataset: tf.data.Dataset, nse_multiple: int = NSE_MULTIPLE) -> tf.data.Dataset:
    """Return ``dataset``'s ``(tf.SparseTensor, labels)`` batches with their values padded for Keras' JAX backend.

    On JAX, Keras turns each ``tf.SparseTensor`` batch into a ``BCOO`` array
    with as many stored values as the batch has, a new shape for nearly every
    batch, and JAX compiles the train step once per shape. Each batch gets
    zeros at the out-of-range index ``dense_shape`` up to a multiple of
    ``nse_multiple`` values: ``BCOO`` ignores them, so a few shapes remain (as
    :func:`utils.sparse.to_jax_sparse` does for batches built in Python).
    TensorFlow's own sparse ops reject such indices: use this on JAX only.
    """
    if nse_multiple < 1:
        raise ValueError(f"nse_multiple must be >= 1, got {nse_multiple}")

    def pad(batch: tf.SparseTensor, labels: tf.Tensor) -> tuple[tf.SparseTensor, tf.Tensor]:
        extra = -tf.shape(batch.values, out_type=tf.int64)[0] % nse_multiple
        indices = tf.concat([batch.indices, tf.tile(batch.dense_shape[tf.newaxis], [extra, 1])], axis=0)
        values = tf.concat([batch.values, tf.zeros([extra], batch.values.dtype)], axis=0)
        return tf.SparseTensor(indices, values, batch.dense_shape), labels

    return dataset.map(pad, num_parallel_calls=AUTOTUNE)


def constant_batch_dataset(x_batch: tf.Tensor | tf.SparseTensor, y_batch: np.ndarray) -> tf.data.Dataset:
    """Return the same pre-built batch forever: no input work, for measuring the compute floor of a train step."""
    return tf.data.Dataset.from_tensors((x_batch, tf.constant(y_batch))).repeat()


# --------------------------------------------------------------------------------------------- from disk


def text_dataset(stream: streaming.DocumentStream, chunk_size: int = streaming.CHUNK_SIZE) -> tf.data.Dataset:
    """Return a dataset of ``(text, label)`` scalars read from ``stream`` on every iteration.

    Documents come in the stream's order; add ``.shuffle(buffer_size)`` for
    training, and ``.batch(batch_size)``. Memory is one chunk of documents
    plus what the pipeline's own buffers hold.
    """

    def documents() -> Iterator[tuple[str, int]]:
        return streaming.documents(stream, chunk_size)

    return tf.data.Dataset.from_generator(
        documents,
        output_signature=(tf.TensorSpec(shape=(), dtype=tf.string), tf.TensorSpec(shape=(), dtype=tf.int64)),
    )


def sparse_batch_dataset(make_batches: Callable[[], Iterator[Batch]], num_features: int, num_batches: int,
                         prefetch: int = 2) -> tf.data.Dataset:
    """Return a dataset of ``(tf.SparseTensor, labels)`` batches drawn from ``make_batches()`` on every iteration.

    Args:
        make_batches: zero-argument function that starts a new pass and
            yields ``(csr_batch, labels)`` with sorted indices (e.g.
            :meth:`utils.feature_cache.FeatureCache.epochs`).
        num_features: number of columns of every batch.
        num_batches: batches in one pass; declared to TensorFlow, so that
            ``model.fit`` knows the length of an epoch from the first one on.
        prefetch: batches prepared ahead of the model.
    """

    def tensors() -> Iterator[tuple[tf.SparseTensor, np.ndarray]]:
        for x, y in make_batches():
            yield to_tf_sparse(x), np.asarray(y, dtype=np.int64)

    dataset = tf.data.Dataset.from_generator(
        tensors,
        output_signature=(tf.SparseTensorSpec(shape=(None, num_features), dtype=tf.float32),
                          tf.TensorSpec(shape=(None,), dtype=tf.int64)),
    )
    return dataset.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(prefetch)


def vectorized_text_batches(stream: streaming.DocumentStream, vectorize: Callable[[tf.Tensor], tf.Tensor],
                            batch_size: int, num_documents: int, *, shuffle_buffer: int = 0,
                            seed: int | None = None, chunk_size: int = streaming.CHUNK_SIZE,
                            prefetch: int = 2) -> tf.data.Dataset:
    """Return a dataset of ``(vectorize(texts), labels)`` batches read from ``stream`` on every iteration.

    The documents are read from disk (:func:`text_dataset`), optionally
    shuffled in a buffer of ``shuffle_buffer`` documents (reshuffled every
    epoch), batched, and turned into model inputs by ``vectorize`` inside the
    pipeline (e.g. a ``keras.layers.TextVectorization`` layer), in parallel
    with training.

    Args:
        stream: the documents.
        vectorize: function from a batch of strings to the model's input.
        batch_size: documents per batch.
        num_documents: documents in one pass (declared to TensorFlow as ``ceil(num_documents / batch_size)``
            batches, so that ``model.fit`` knows the length of an epoch).
        shuffle_buffer: documents held in the shuffle buffer; 0 keeps the stream's order.
        seed: seed of the shuffle.
        chunk_size: documents read from disk at a time.
        prefetch: batches prepared ahead of the model.
    """
    dataset = text_dataset(stream, chunk_size)
    if shuffle_buffer > 0:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def vectorize_batch(texts: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return vectorize(texts), labels

    dataset = dataset.batch(batch_size).map(vectorize_batch, num_parallel_calls=tf.data.AUTOTUNE)
    num_batches = steps_per_epoch(num_documents, batch_size)
    return dataset.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(prefetch)


def cached_feature_batches(cache: FeatureCache, transform: Callable[[sp.csr_matrix], sp.csr_matrix],
                           num_features: int, batch_size: int, *, shuffle: bool, seed: int | None = 0,
                           prefetch: int = 2) -> tf.data.Dataset:
    """Return a dataset of sparse batches read from a feature cache at every iteration.

    Args:
        cache: the cached rows (e.g. hashed n-gram counts).
        transform: applied to each bucket (e.g. ``HashedTfidf.transform_counts``).
        num_features: number of columns after ``transform``.
        batch_size: rows per batch.
        shuffle: random bucket order and rows, new every epoch; otherwise the written order.
        seed: seed of the shuffling.
        prefetch: batches prepared ahead of the model.
    """
    make_batches = cache.epochs(batch_size, transform=transform, shuffle=shuffle, seed=seed)
    return sparse_batch_dataset(make_batches, num_features, num_batches=steps_per_epoch(cache.num_rows, batch_size),
                                prefetch=prefetch)
