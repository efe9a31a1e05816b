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

:func:`build_sepcnn` is the guide's model: an Embedding of 200 dimensions,
blocks of two separable 1-D convolutions and max pooling, two more
convolutions, global average pooling, dropout and the output layer.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np
import tensorflow as tf

from utils import disk_datasets, streaming
from utils.models import output_layer

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
    dataset = disk_datasets.text_dataset(stream, chunk_size)
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
    num_batches = full * window_batches + -(-rest // batch_size)
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


def depthwise_initializer(kernel_size: int) -> keras.initializers.Initializer:
    """Return a uniform initializer that keeps the variance of a depthwise convolution's output.

    A depthwise kernel mixes ``kernel_size`` values of one channel, so its
    fan-in is ``kernel_size``; drawing weights from
    ``U(-sqrt(3 / kernel_size), sqrt(3 / kernel_size))`` (variance
    ``1 / kernel_size``) keeps the output's variance equal to the input's.
    (Keras computes the fan-in of a depthwise kernel as ``kernel_size *
    channels``, which makes its default initializer hundreds of times too small here.)
    """
    limit = float(np.sqrt(3.0 / kernel_size))
    return keras.initializers.RandomUniform(-limit, limit)


def build_sepcnn(num_tokens: int, num_classes: int, *, blocks: int = 2, filters: int = 64, kernel_size: int = 3,
                 embedding_dim: int = 200, dropout_rate: float = 0.2, pool_size: int = 3,
                 learning_rate: float = 1e-3, guide_initializers: bool = False) -> keras.Model:
    """Return the guide's separable CNN, compiled; it accepts sequences of any length.

    Embedding(``num_tokens``, ``embedding_dim``); ``blocks - 1`` blocks of
    Dropout, two SeparableConv1D(``filters``) and MaxPooling1D(``pool_size``);
    two SeparableConv1D(``2 * filters``); GlobalAveragePooling1D; Dropout; the
    output layer (one sigmoid unit for two classes, softmax otherwise). Adam.

    The guide initialized the depthwise kernels (and biases) with
    ``"random_uniform"``, ``U(-0.05, 0.05)``: each of the four convolutions
    then shrinks the differences between inputs many times over, the output
    is almost the same for every text, and training stays at chance level
    (chapter 06 measures it). By default the depthwise kernels use
    :func:`depthwise_initializer` instead; ``guide_initializers=True`` builds
    the guide's version.

    Args:
        num_tokens: vocabulary size of the vectorizer (padding and OOV included).
        num_classes: number of classes, >= 2.
        blocks: number of convolution blocks, >= 1.
        filters: filters of the first blocks' convolutions.
        kernel_size: convolution window.
        embedding_dim: size of the token embeddings.
        dropout_rate: dropout rate.
        pool_size: max-pooling window.
        learning_rate: Adam's learning rate.
        guide_initializers: initialize the depthwise kernels as the guide did.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if blocks < 1:
        raise ValueError(f"blocks must be >= 1, got {blocks}")

    def separable(units: int) -> keras.layers.Layer:
        return keras.layers.SeparableConv1D(
            units, kernel_size, activation="relu", padding="same", bias_initializer="random_uniform",
            depthwise_initializer="random_uniform" if guide_initializers else depthwise_initializer(kernel_size))

    inputs = keras.Input(shape=(None,), dtype="int64", name="tokens")
    x = keras.layers.Embedding(num_tokens, embedding_dim)(inputs)
    for _ in range(blocks - 1):
        x = keras.layers.Dropout(dropout_rate)(x)
        x = separable(filters)(x)
        x = separable(filters)(x)
        x = keras.layers.MaxPooling1D(pool_size)(x)
    x = separable(filters * 2)(x)
    x = separable(filters * 2)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dropout(dropout_rate)(x)
    outputs, loss = output_layer(x, num_classes)
    model = keras.Model(inputs, outputs, name="sepcnn")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=["accuracy"])
    return model
