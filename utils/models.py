"""The guide's two models, built with Keras 3: the MLP on n-gram vectors and the sepCNN on token sequences.

* :func:`build_mlp`: Dropout on the input, Dense + Dropout blocks, the output
  layer; :class:`SparseDropout` lets it take ``tf.SparseTensor`` batches.
* :func:`build_sepcnn`: an Embedding of 200 dimensions, blocks of two
  separable 1-D convolutions and max pooling, two more convolutions, global
  average pooling, dropout and the output layer; :func:`depthwise_initializer`
  is the initializer it needs to learn at all.

Both are compiled by :func:`compile_model` with the loss that goes with their
output layer (:func:`output_layer`), Adam, accuracy, and
``steps_per_execution`` (train steps run per call into the compiled function:
more than 1 saves Python dispatch per step).

Both models run on Keras 3's TensorFlow and JAX backends (chapter 12). Only
:class:`SparseDropout` needs to know which: it imports the backend's sparse
type when it is called. PyTorch's backend takes no sparse input at all.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="utils")
class SparseDropout(keras.layers.Layer):
    """Dropout for a sparse input (``tf.SparseTensor``, or JAX's ``BCOO``): the guide's input Dropout, not densified.

    Keras' ``Dropout`` cannot take a sparse tensor on either backend. Dropping
    each stored value with probability ``rate`` and scaling the survivors by
    ``1 / (1 - rate)`` is exactly what ``Dropout`` does to the dense matrix,
    since its zeros stay zero either way. On TensorFlow the dropped values are
    removed (``tf.sparse.retain``); on JAX, where every shape must be known
    when the step is compiled, they are set to zero in place.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """Return ``inputs`` with values dropped and rescaled when training, unchanged otherwise."""
        if not training or self.rate == 0:
            return inputs
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            keep = keras.random.uniform(tf.shape(inputs.values), seed=self.seed_generator) >= self.rate
            kept = tf.sparse.retain(inputs, keep)
            return tf.SparseTensor(kept.indices, kept.values / (1.0 - self.rate), kept.dense_shape)
        if backend == "jax":
            import jax.experimental.sparse as jax_sparse

            keep = keras.random.uniform(inputs.data.shape, seed=self.seed_generator) >= self.rate
            values = keras.ops.where(keep, inputs.data / (1.0 - self.rate), 0.0)
            return jax_sparse.BCOO((values, inputs.indices), shape=inputs.shape)
        raise NotImplementedError(f"sparse inputs are not supported by Keras' {backend} backend")

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Same shape as the input."""
        return input_shape

    def get_config(self) -> dict:
        """Return the layer's configuration."""
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="utils")
class EndPaddedMaxPooling1D(keras.layers.Layer):
    """Max pooling over windows of ``pool_size`` that start at position 0 whatever the sequence's length.

    The sequence is first extended at its end with zeros to a multiple of
    ``pool_size``, then pooled with non-overlapping windows. For inputs >= 0
    (ReLU outputs, a 0/1 mask), trailing padding then never changes a
    window's maximum: a sequence alone and the same sequence followed by
    padding pool to the same values. (``MaxPooling1D(padding="same")`` would
    split TensorFlow's padding between both ends and shift the windows with
    the length; ``"valid"`` drops the last positions of a sequence alone.)
    """

    def __init__(self, pool_size: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        self.pool_size = pool_size

    def call(self, inputs: Any) -> Any:
        """Pad ``(batch, length, channels)`` at the end to a multiple of ``pool_size``; max-pool it."""
        extra = -keras.ops.shape(inputs)[1] % self.pool_size
        padded = keras.ops.pad(inputs, [[0, 0], [0, extra], [0, 0]])
        return keras.ops.max_pool(padded, self.pool_size, self.pool_size, padding="valid")

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """``(batch, ceil(length / pool_size), channels)``."""
        length = None if input_shape[1] is None else -(-input_shape[1] // self.pool_size)
        return (input_shape[0], length, input_shape[2])

    def get_config(self) -> dict:
        """Return the layer's configuration."""
        return {**super().get_config(), "pool_size": self.pool_size}


def output_layer(x: keras.KerasTensor, num_classes: int) -> tuple[keras.KerasTensor, str]:
    """Return the guide's output layer applied to ``x``, and the loss that goes with it.

    One sigmoid unit and binary cross-entropy for two classes; ``num_classes``
    softmax units and sparse categorical cross-entropy otherwise.
    """
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid")(x), "binary_crossentropy"
    return keras.layers.Dense(num_classes, activation="softmax")(x), "sparse_categorical_crossentropy"


def compile_model(model: keras.Model, loss: str, *, learning_rate: float = 1e-3,
                  steps_per_execution: int = 1) -> keras.Model:
    """Compile ``model`` as the guide does (Adam, ``loss``, accuracy), with ``steps_per_execution``; return it."""
    if steps_per_execution < 1:
        raise ValueError(f"steps_per_execution must be >= 1, got {steps_per_execution}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    return model


def build_mlp(num_features: int, num_classes: int, *, layers: int = 2, units: int = 64,
              dropout_rate: float = 0.2, learning_rate: float = 1e-3, sparse_input: bool = False,
              steps_per_execution: int = 1) -> keras.Model:
    """Return the guide's multi-layer perceptron, compiled.

    Dropout on the input, then ``layers - 1`` blocks of Dense(``units``, relu)
    and Dropout, then the output layer: one sigmoid unit for two classes
    (binary cross-entropy), ``num_classes`` softmax units otherwise (sparse
    categorical cross-entropy). Adam with the given learning rate.

    Args:
        num_features: number of input features.
        num_classes: number of classes, >= 2.
        layers: number of Dense layers including the output layer, >= 1.
        units: width of each hidden Dense layer.
        dropout_rate: dropout rate on the input and after every hidden layer.
        learning_rate: Adam's learning rate.
        sparse_input: declare the input sparse, so that scipy sparse batches
            reach the first Dense layer as ``tf.SparseTensor`` without being
            densified.
        steps_per_execution: train steps per call into the compiled function.

    Returns:
        The compiled model (:func:`compile_model`).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    inputs = keras.Input(shape=(num_features,), sparse=sparse_input, name="ngrams")
    x = (SparseDropout(dropout_rate) if sparse_input else keras.layers.Dropout(dropout_rate))(inputs)
    for _ in range(layers - 1):
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(dropout_rate)(x)
    outputs, loss = output_layer(x, num_classes)
    return compile_model(keras.Model(inputs, outputs, name="mlp"), loss, learning_rate=learning_rate,
                         steps_per_execution=steps_per_execution)


def build_fasttext(num_features: int, num_classes: int, *, dim: int = 10, learning_rate: float = 5e-3,
                   sparse_input: bool = True, steps_per_execution: int = 1) -> keras.Model:
    """Return fastText's classifier (Joulin et al. 2016, *Bag of Tricks for Efficient Text Classification*), compiled.

    fastText looks up an embedding of ``dim`` numbers for every word and hashed
    n-gram of a document, averages them, and feeds the average to a linear
    softmax. An average of embedding rows weighted by the document's n-gram
    values is a product of its (sparse) bag-of-n-grams row with the embedding
    table: a ``Dense(dim, use_bias=False)`` layer on a sparse input. With
    tf-idf rows of unit length, the average is tf-idf-weighted. Then the output
    layer (:func:`output_layer`): nothing non-linear in between, as in fastText.

    Args:
        num_features: input columns (hashed n-grams).
        num_classes: number of classes, >= 2.
        dim: size of the embeddings (fastText's ``-dim``: the library's default is 100, Joulin et al. used 10).
        learning_rate: Adam's learning rate (larger than the MLP's: a linear model with few weights per feature).
        sparse_input: declare the input sparse (scipy, ``tf.SparseTensor`` or BCOO batches).
        steps_per_execution: train steps per call into the compiled function.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    inputs = keras.Input(shape=(num_features,), sparse=sparse_input, name="ngrams")
    averaged = keras.layers.Dense(dim, use_bias=False, name="averaged_embeddings")(inputs)
    outputs, loss = output_layer(averaged, num_classes)
    return compile_model(keras.Model(inputs, outputs, name="fasttext"), loss, learning_rate=learning_rate,
                         steps_per_execution=steps_per_execution)


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
                 learning_rate: float = 1e-3, guide_initializers: bool = False,
                 steps_per_execution: int = 1) -> keras.Model:
    """Return the guide's separable CNN, compiled; it accepts sequences of any length.

    Embedding(``num_tokens``, ``embedding_dim``); ``blocks - 1`` blocks of
    Dropout, two SeparableConv1D(``filters``) and MaxPooling1D(``pool_size``);
    two SeparableConv1D(``2 * filters``); global average pooling; Dropout;
    the output layer (one sigmoid unit for two classes, softmax otherwise).
    Adam.

    **Padding never changes a prediction.** Token id 0 is padding. The
    guide's model treats it as a word: its embedding, and the convolutions'
    biases at padded positions, enter the final average, so a document's
    score depends on how long the longest document of its batch is. Here a
    mask (``tokens != 0``) zeroes every padded position after the embedding
    and after each convolution (where a ``"same"`` convolution would see its
    own zero padding anyway), max pooling pools the mask with the values with
    windows that start at position 0 for any length
    (:class:`EndPaddedMaxPooling1D`; the guide's ``"valid"`` pooling drops a
    document's last tokens when it stands alone but not when padded), and the
    final average runs over the real positions only. A document scores the
    same alone and in a batch padded to any length.

    The guide initialized the depthwise kernels (and biases) with
    ``"random_uniform"``, ``U(-0.05, 0.05)``: each of the four convolutions
    then shrinks the differences between inputs many times over, and the
    output is almost the same for every text. Chapter 06 (section 4)
    measures it on IMDB: before training, the guide's version gives a batch
    of reviews the same prediction to float32 precision, with a gradient at
    the embeddings about 10^5 times smaller than the fix's; trained for 3
    epochs on 4,000 reviews, it stays at chance level (its loss at ln 2)
    while the fixed version learns. By default the depthwise kernels use
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
        steps_per_execution: train steps per call into the compiled function.
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
    mask = keras.ops.expand_dims(keras.ops.cast(keras.ops.not_equal(inputs, 0), "float32"), -1)  # (batch, length, 1)
    x = keras.layers.Embedding(num_tokens, embedding_dim)(inputs) * mask
    for _ in range(blocks - 1):
        x = keras.layers.Dropout(dropout_rate)(x)
        x = separable(filters)(x) * mask
        x = separable(filters)(x) * mask
        x = EndPaddedMaxPooling1D(pool_size)(x)
        mask = EndPaddedMaxPooling1D(pool_size)(mask)
    x = separable(filters * 2)(x) * mask
    x = separable(filters * 2)(x) * mask
    x = keras.ops.sum(x, axis=1) / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1.0)  # mean over real tokens
    x = keras.layers.Dropout(dropout_rate)(x)
    outputs, loss = output_layer(x, num_classes)
    return compile_model(keras.Model(inputs, outputs, name="sepcnn"), loss, learning_rate=learning_rate,
                         steps_per_execution=steps_per_execution)
