"""The guide's sequence model (sepCNN) and its input: token sequences padded per batch.

The guide's ``batch_train_sequence_model`` turned texts into integer sequences
with ``keras.preprocessing.text.Tokenizer``, padded **the whole corpus** to
500 tokens with ``pad_sequences`` before training, and trained a separable
CNN on it. Keras 3 removed ``keras.preprocessing.text``;
``keras.layers.TextVectorization(output_mode="int")`` replaces the tokenizer,
and it can run inside a ``tf.data`` pipeline, so each batch is padded only to
its own longest sequence:

* :func:`sequence_vectorizer` builds the layer (top ``max_tokens`` tokens,
  ragged output: each document keeps its own length);
* :func:`pad_batch` truncates a batch to ``max_length`` tokens and pads it to
  its longest sequence (or to ``max_length``, the guide's way);
* :func:`length_bucketed_batches` reads documents from disk and groups
  documents of similar length into the same batch, so that little padding is
  left; :func:`padding_cost` counts the padded positions of each strategy.

The guide's sepCNN itself is :func:`utils.models.build_sepcnn`.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np
import tensorflow as tf

from utils import streaming, tfdata
from utils.batching import steps_per_epoch

#: The guide's settings for sequence models.
TOP_K_TOKENS = 20_000
MAX_SEQUENCE_LENGTH = 500
#: Shortest padded batch: the model's max pooling needs at least ``pool_size`` (3) positions.
MIN_SEQUENCE_LENGTH = 3


def sequence_vectorizer(max_tokens: int = TOP_K_TOKENS) -> keras.layers.TextVectorization:
    """Return an unadapted ``TextVectorization`` layer mapping texts to ragged int sequences.

    Index 0 is reserved for padding and 1 for out-of-vocabulary tokens, so at
    most ``max_tokens - 2`` words get their own index. Call ``adapt`` on a
    dataset of texts before use.
    """
    return keras.layers.TextVectorization(max_tokens=max_tokens, output_mode="int", ragged=True)


def pad_batch(tokens: tf.RaggedTensor, max_length: int = MAX_SEQUENCE_LENGTH, *,
              fixed: bool = False) -> tf.Tensor:
    """Truncate each sequence to its first ``max_length`` tokens and pad with 0 at the end.

    Args:
        tokens: ragged ``(batch, None)`` int sequences.
        max_length: longest sequence kept.
        fixed: pad to ``max_length`` (the guide's whole-corpus padding) instead
            of to the longest sequence of the batch (but at least
            :data:`MIN_SEQUENCE_LENGTH`).

    Returns:
        A dense int64 ``(batch, length)`` tensor.
    """
    tokens = tokens[:, :max_length]
    if fixed:
        return tokens.to_tensor(shape=[None, max_length])
    length = tf.maximum(tf.reduce_max(tokens.row_lengths()), MIN_SEQUENCE_LENGTH)
    return tokens.to_tensor(shape=tf.stack([tokens.nrows(), length]))


def length_bucketed_batches(stream: streaming.DocumentStream, vectorizer: keras.layers.TextVectorization,
                            batch_size: int, num_documents: int, *, max_length: int = MAX_SEQUENCE_LENGTH,
                            window_batches: int = 16, shuffle_buffer: int = 0, seed: int | None = None,
                            chunk_size: int = streaming.CHUNK_SIZE, prefetch: int = 2) -> tf.data.Dataset:
    """Return a dataset of ``(padded token batch, labels)`` whose batches hold documents of similar length.

    Documents are read from disk, shuffled in a buffer of ``shuffle_buffer``,
    and taken ``window_batches * batch_size`` at a time; each window is
    vectorized, sorted by length and cut into batches, each padded to its own
    longest sequence; the batches are then shuffled across windows of the
    stream so that lengths do not come in order. Every document is used once
    per pass.

    Args:
        stream: the documents.
        vectorizer: an adapted :func:`sequence_vectorizer` layer.
        batch_size: documents per batch.
        num_documents: documents in one pass (to declare the number of batches).
        max_length: longest sequence kept.
        window_batches: batches per sorted window; 1 gives plain per-batch
            padding of shuffled batches, more gives less padding but batches
            less random.
        shuffle_buffer: documents in the shuffle buffer; 0 keeps the stream's order.
        seed: seed of the shuffles.
        chunk_size: documents read from disk at a time.
        prefetch: batches prepared ahead of the model.
    """
    window = batch_size * window_batches
    dataset = tfdata.text_dataset(stream, chunk_size)
    if shuffle_buffer > 0:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def sorted_batches(texts: tf.Tensor, labels: tf.Tensor) -> tf.data.Dataset:
        tokens = vectorizer(texts)[:, :max_length]
        order = tf.argsort(tokens.row_lengths())
        tokens, labels = tf.gather(tokens, order), tf.gather(labels, order)
        batches = tf.data.Dataset.from_tensor_slices((tokens, labels)).batch(batch_size)
        return batches.map(padded)

    def padded(tokens: tf.RaggedTensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return pad_batch(tokens, max_length), labels

    dataset = dataset.batch(window).flat_map(sorted_batches)
    if window_batches > 1:
        dataset = dataset.shuffle(2 * window_batches, seed=seed, reshuffle_each_iteration=True)
    full, rest = divmod(num_documents, window)
    num_batches = full * window_batches + (steps_per_epoch(rest, batch_size) if rest else 0)
    return dataset.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(prefetch)


def padding_cost(lengths: Iterable[int], batch_size: int, max_length: int = MAX_SEQUENCE_LENGTH,
                 window_batches: int = 16, seed: int = 0) -> dict[str, int]:
    """Count the token positions one pass computes on, for each way of padding.

    Args:
        lengths: the documents' sequence lengths before truncation.
        batch_size: documents per batch.
        max_length: longest sequence kept.
        window_batches: as in :func:`length_bucketed_batches`.
        seed: seed of the shuffled order.

    Returns:
        ``{"tokens", "whole_corpus", "per_batch", "length_bucketed"}``: real
        tokens after truncation, and positions (tokens plus padding) when the
        whole corpus is padded to ``max_length``, when each shuffled batch is
        padded to its longest sequence, and when batches are cut from sorted
        windows.
    """
    kept = np.minimum(np.asarray(list(lengths)), max_length)
    kept = kept[np.random.default_rng(seed).permutation(len(kept))]

    def padded(order: np.ndarray) -> int:
        return int(sum(len(batch) * batch.max() for batch in np.array_split(
            order, range(batch_size, len(order), batch_size))))

    window = batch_size * window_batches
    bucketed = sum(padded(np.sort(kept[start:start + window])) for start in range(0, len(kept), window))
    return {"tokens": int(kept.sum()), "whole_corpus": len(kept) * max_length, "per_batch": padded(kept),
            "length_bucketed": int(bucketed)}
