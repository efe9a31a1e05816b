"""Tests of utils.models: the guide's MLP and SparseDropout.

Data is synthetic: a dense grid of distinct values for SparseDropout, and an easy linearly separable
sparse problem for the training test.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from utils.batching import batch_generator, steps_per_epoch
from utils.models import SparseDropout, build_mlp


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    """The model's Dense layers, input to output."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def test_two_classes_one_sigmoid_output() -> None:
    model = build_mlp(20, 2, units=8)
    assert model.output_shape == (None, 1)
    assert dense_layers(model)[-1].activation is keras.activations.sigmoid
    assert model.loss == "binary_crossentropy"
    out = model.predict(np.random.default_rng(0).random((5, 20), dtype=np.float32), verbose=0)
    assert out.shape == (5, 1) and np.all((out > 0) & (out < 1))


def test_four_classes_four_softmax_outputs() -> None:
    model = build_mlp(20, 4, units=8)
    assert model.output_shape == (None, 4)
    assert dense_layers(model)[-1].activation is keras.activations.softmax
    assert model.loss == "sparse_categorical_crossentropy"
    out = model.predict(np.random.default_rng(0).random((5, 20), dtype=np.float32), verbose=0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("num_classes", [1, 0, -2])
def test_num_classes_below_two_raises(num_classes: int) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        build_mlp(10, num_classes)


@pytest.mark.parametrize("layers", [0, -1])
def test_layers_below_one_raises(layers: int) -> None:
    with pytest.raises(ValueError, match="layers"):
        build_mlp(10, 2, layers=layers)


def test_layers_3_gives_two_hidden_dense_layers() -> None:
    model = build_mlp(30, 4, layers=3, units=16, dropout_rate=0.3)
    dense = dense_layers(model)
    assert len(dense) == 3
    for hidden in dense[:2]:
        assert hidden.units == 16 and hidden.activation is keras.activations.relu
    assert dense[2].units == 4
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(dropouts) == 3 and all(d.rate == 0.3 for d in dropouts)  # input + after each hidden layer


def test_layers_1_is_input_dropout_then_output() -> None:
    model = build_mlp(30, 2, layers=1)
    assert [layer.units for layer in dense_layers(model)] == [1]


def grid_sparse_tensor(rows: int = 100, cols: int = 100) -> tuple[tf.SparseTensor, np.ndarray]:
    """A full rows x cols SparseTensor whose value at (i, j) is 1 + i * cols + j (all distinct)."""
    indices = np.array([[i, j] for i in range(rows) for j in range(cols)], dtype=np.int64)
    values = (1 + indices[:, 0] * cols + indices[:, 1]).astype(np.float32)
    return tf.SparseTensor(indices, values, [rows, cols]), values


def test_sparse_dropout_identity_when_not_training() -> None:
    st, values = grid_sparse_tensor(10, 10)
    layer = SparseDropout(0.5, seed=0)
    for training in (False, None):
        out = layer(st, training=training)
        np.testing.assert_array_equal(out.values.numpy(), values)
        np.testing.assert_array_equal(out.indices.numpy(), st.indices.numpy())


def test_sparse_dropout_training_drops_and_rescales() -> None:
    rate = 0.3
    st, values = grid_sparse_tensor(100, 100)  # 10,000 values
    out = SparseDropout(rate, seed=1)(st, training=True)
    assert isinstance(out, tf.SparseTensor)
    assert out.dense_shape.numpy().tolist() == [100, 100]
    kept_indices = out.indices.numpy()
    kept_values = out.values.numpy()
    original = values[kept_indices[:, 0] * 100 + kept_indices[:, 1]]
    np.testing.assert_allclose(kept_values, original / (1 - rate), rtol=1e-6)
    assert len(np.unique(kept_indices, axis=0)) == len(kept_indices)  # dropped values are gone, not zeroed
    fraction = len(kept_values) / len(values)
    assert abs(fraction - (1 - rate)) < 0.03
    # The dense view is what Dropout would give: zeros where dropped, scaled values elsewhere.
    dense = tf.sparse.to_dense(tf.sparse.reorder(out)).numpy()
    assert np.count_nonzero(dense) == len(kept_values)


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_sparse_dropout_rejects_rate_outside_0_1(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        SparseDropout(rate)


def test_sparse_dropout_config_round_trip() -> None:
    layer = SparseDropout(0.25, seed=3, name="sd")
    clone = SparseDropout.from_config(layer.get_config())
    assert (clone.rate, clone.seed, clone.name) == (0.25, 3, "sd")


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed:UserWarning")
def test_sparse_input_model_trains_from_sparse_generator() -> None:
    """Synthetic, easy problem: label = sign of a fixed linear function of sparse non-negative features."""
    keras.utils.set_random_seed(0)
    n, features, batch_size = 512, 40, 32
    x = sp.random(n, features, density=0.2, format="csr", random_state=1, dtype=np.float32)
    w = np.random.default_rng(2).normal(size=features)
    scores = x @ w
    y = (scores > np.median(scores)).astype(np.int64)
    model = build_mlp(features, 2, layers=2, units=16, dropout_rate=0.1, learning_rate=1e-2, sparse_input=True)
    assert isinstance(model.layers[1], SparseDropout)
    steps = steps_per_epoch(n, batch_size)
    history = model.fit(batch_generator(x, y, batch_size, sparse=True, seed=0), steps_per_epoch=steps,
                        epochs=6, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 6 and all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0]
    accuracy = model.evaluate(batch_generator(x, y, 128, shuffle=False, sparse=True), steps=steps_per_epoch(n, 128),
                              verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.8


def test_sepcnn_prediction_is_padding_invariant() -> None:
    """A document scores the same alone and in a batch padded to 500 tokens (the guide's longest)."""
    from utils.models import build_sepcnn

    keras.utils.set_random_seed(0)
    model = build_sepcnn(500, 2, blocks=2)
    rng = np.random.default_rng(0)
    for length in (3, 10, 97, 250):
        tokens = rng.integers(1, 500, size=length)
        alone = model(tokens[None, :], training=False).numpy()
        padded = np.zeros((2, 500), dtype=np.int64)
        padded[0, :length] = tokens
        padded[1, :] = rng.integers(1, 500, size=500)  # the longest document of the batch
        in_batch = model(padded, training=False).numpy()[0]
        np.testing.assert_allclose(in_batch, alone[0], rtol=1e-5, atol=1e-6)


def test_fasttext_model_is_an_averaged_embedding_then_the_output_layer() -> None:
    from utils.models import build_fasttext

    model = build_fasttext(30, 14, dim=5)
    embedding, output = dense_layers(model)
    assert embedding.kernel.shape == (30, 5) and not embedding.use_bias and embedding.activation.__name__ == "linear"
    assert output.units == 14 and model.loss == "sparse_categorical_crossentropy"
    assert dense_layers(build_fasttext(30, 2))[1].units == 1
    with pytest.raises(ValueError, match="dim"):
        build_fasttext(30, 2, dim=0)
    with pytest.raises(ValueError, match="num_classes"):
        build_fasttext(30, 1)


def test_fasttext_model_learns_fourteen_classes_from_sparse_batches() -> None:
    """Synthetic: each of 14 classes has its own 3 columns out of 60; a row holds 2 of them and noise."""
    from utils.models import build_fasttext

    rng = np.random.default_rng(0)
    y = rng.integers(0, 14, 1400)
    cols = np.stack([y * 3 + rng.integers(0, 3, 1400), 42 + rng.integers(0, 18, 1400)], axis=1)
    x = sp.csr_matrix((np.ones(2800, np.float32), (np.repeat(np.arange(1400), 2), cols.ravel())), shape=(1400, 60))
    keras.utils.set_random_seed(0)
    model = build_fasttext(60, 14, dim=8, learning_rate=0.05)
    model.fit(batch_generator(x, y, 64, sparse=True), steps_per_epoch=steps_per_epoch(1400, 64), epochs=8, verbose=0)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] > 0.95
