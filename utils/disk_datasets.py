"""``tf.data`` pipelines that read from disk: documents from a stream, sparse batches from a feature cache.

``model.fit`` takes a ``tf.data.Dataset`` and, unlike a Python generator,
re-iterates it from the start at every epoch and for every validation pass,
so it can be passed as ``validation_data`` safely. Both helpers here wrap a
function that starts a new pass over files on disk with
``tf.data.Dataset.from_generator``: TensorFlow calls that function again at
each iteration, so nothing is read before it is needed and nothing is kept
after. ``prefetch`` lets the next batch be read while the model trains on the
current one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from utils import streaming
from utils.feature_cache import FeatureCache

Batch = tuple[sp.csr_matrix, np.ndarray]


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


def to_sparse_value(x: sp.csr_matrix) -> tf.compat.v1.SparseTensorValue:
    """Convert a CSR matrix with sorted indices to the numpy triple TensorFlow builds a ``tf.SparseTensor`` from.

    Returns:
        ``SparseTensorValue(indices, values, dense_shape)``: int64 ``(nnz, 2)``
        row-major indices, float32 values, the shape.
    """
    coo = x.tocoo()
    indices = np.column_stack([coo.row, coo.col]).astype(np.int64)
    return tf.compat.v1.SparseTensorValue(indices, coo.data.astype(np.float32), np.asarray(x.shape, dtype=np.int64))


def sparse_batch_dataset(make_batches: Callable[[], Iterator[Batch]], num_columns: int, num_batches: int,
                         prefetch: int = 2) -> tf.data.Dataset:
    """Return a dataset of ``(tf.SparseTensor, labels)`` batches drawn from ``make_batches()`` on every iteration.

    Args:
        make_batches: zero-argument function that starts a new pass and
            yields ``(csr_batch, labels)`` with sorted indices (e.g.
            :meth:`utils.feature_cache.FeatureCache.epochs`).
        num_columns: number of columns of every batch.
        num_batches: batches in one pass; declared to TensorFlow, so that
            ``model.fit`` knows the length of an epoch from the first one on.
        prefetch: batches prepared ahead of the model.
    """

    def tensors() -> Iterator[tuple[tf.compat.v1.SparseTensorValue, np.ndarray]]:
        for x, y in make_batches():
            yield to_sparse_value(x), np.asarray(y, dtype=np.int64)

    dataset = tf.data.Dataset.from_generator(
        tensors,
        output_signature=(tf.SparseTensorSpec(shape=(None, num_columns), dtype=tf.float32),
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
    num_batches = -(-num_documents // batch_size)
    return dataset.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(prefetch)


def cached_feature_batches(cache: FeatureCache, transform: Callable[[sp.csr_matrix], sp.csr_matrix],
                           num_columns: int, batch_size: int, *, shuffle: bool, seed: int | None = 0,
                           prefetch: int = 2) -> tf.data.Dataset:
    """Return a dataset of sparse batches read from a feature cache at every iteration.

    Args:
        cache: the cached rows (e.g. hashed n-gram counts).
        transform: applied to each bucket (e.g. ``HashedTfidf.transform_counts``).
        num_columns: number of columns after ``transform``.
        batch_size: rows per batch.
        shuffle: random bucket order and rows, new every epoch; otherwise the written order.
        seed: seed of the shuffling.
        prefetch: batches prepared ahead of the model.
    """
    make_batches = cache.epochs(batch_size, transform=transform, shuffle=shuffle, seed=seed)
    return sparse_batch_dataset(make_batches, num_columns, num_batches=-(-cache.num_rows // batch_size),
                                prefetch=prefetch)
