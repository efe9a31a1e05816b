"""The guide's models, built with Keras 3."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="utils")
class SparseDropout(keras.layers.Layer):
    """Dropout for a ``tf.SparseTensor`` input: the guide's input Dropout without densifying.

    Keras' ``Dropout`` cannot take a sparse tensor. Dropping each stored value
    with probability ``rate`` and scaling the survivors by ``1 / (1 - rate)``
    is exactly what ``Dropout`` does to the dense matrix, since its zeros stay
    zero either way.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: tf.SparseTensor, training: bool | None = None) -> tf.SparseTensor:
        """Return ``inputs`` with values dropped and rescaled when training, unchanged otherwise."""
        if not training or self.rate == 0:
            return inputs
        keep = keras.random.uniform(tf.shape(inputs.values), seed=self.seed_generator) >= self.rate
        kept = tf.sparse.retain(inputs, keep)
        return tf.SparseTensor(kept.indices, kept.values / (1.0 - self.rate), kept.dense_shape)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Same shape as the input."""
        return input_shape

    def get_config(self) -> dict:
        """Return the layer's configuration."""
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def output_layer(x: keras.KerasTensor, num_classes: int) -> tuple[keras.KerasTensor, str]:
    """Return the guide's output layer applied to ``x``, and the loss that goes with it.

    One sigmoid unit and binary cross-entropy for two classes; ``num_classes``
    softmax units and sparse categorical cross-entropy otherwise.
    """
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid")(x), "binary_crossentropy"
    return keras.layers.Dense(num_classes, activation="softmax")(x), "sparse_categorical_crossentropy"


def build_mlp(input_dim: int, num_classes: int, *, layers: int = 2, units: int = 64,
              dropout_rate: float = 0.2, learning_rate: float = 1e-3,
              sparse_input: bool = False) -> keras.Model:
    """Return the guide's multi-layer perceptron, compiled.

    Dropout on the input, then ``layers - 1`` blocks of Dense(``units``, relu)
    and Dropout, then the output layer: one sigmoid unit for two classes
    (binary cross-entropy), ``num_classes`` softmax units otherwise (sparse
    categorical cross-entropy). Adam with the given learning rate.

    Args:
        input_dim: number of input features.
        num_classes: number of classes, >= 2.
        layers: number of Dense layers including the output layer, >= 1.
        units: width of each hidden Dense layer.
        dropout_rate: dropout rate on the input and after every hidden layer.
        learning_rate: Adam's learning rate.
        sparse_input: declare the input sparse, so that scipy sparse batches
            reach the first Dense layer as ``tf.SparseTensor`` without being
            densified.

    Returns:
        The compiled model, with ``accuracy`` as metric.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    inputs = keras.Input(shape=(input_dim,), sparse=sparse_input, name="ngrams")
    x = (SparseDropout(dropout_rate) if sparse_input else keras.layers.Dropout(dropout_rate))(inputs)
    for _ in range(layers - 1):
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(dropout_rate)(x)
    outputs, loss = output_layer(x, num_classes)
    model = keras.Model(inputs, outputs, name="mlp")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss,
                  metrics=["accuracy"])
    return model
