"""Tests of utils.pipelines: tf.data pipelines that must yield exactly the rows of the matrix.

All data here is synthetic: small random sparse matrices whose labels are the row ids, so that every
batch says which rows it holds.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from utils import tfdata
from utils.batching import batch_generator


def make_sparse(n: int, features: int = 9, seed: int = 0) -> sp.csr_matrix:
    """A random float32 CSR matrix (synthetic); some rows are empty, as short documents can be."""
    return sp.random(n, features, density=0.25, format="csr", random_state=seed, dtype=np.float32)


def dense(batch: tf.SparseTensor | tf.Tensor) -> np.ndarray:
    """A batch as a dense numpy array."""
    return tf.sparse.to_dense(batch).numpy() if isinstance(batch, tf.SparseTensor) else batch.numpy()


EPOCH_PIPELINES = [tfdata.gathered_dataset, tfdata.sparse_slices_dataset]


@pytest.mark.parametrize("make", EPOCH_PIPELINES)
def test_one_epoch_holds_every_row_once_with_the_right_values(make) -> None:
    x = make_sparse(23)
    batches = list(make(x, np.arange(23), batch_size=5, seed=1))
    assert [len(rows) for _, rows in batches] == [5, 5, 5, 5, 3]
    rows = np.concatenate([r.numpy() for _, r in batches])
    assert sorted(rows) == list(range(23))
    for x_batch, r in batches:
        np.testing.assert_array_equal(dense(x_batch), x[r.numpy()].toarray())


@pytest.mark.parametrize("make", EPOCH_PIPELINES)
def test_reshuffles_every_epoch_and_keeps_order_without_shuffle(make) -> None:
    x = make_sparse(40)
    dataset = make(x, np.arange(40), batch_size=40, seed=2)
    first, second = (next(iter(dataset))[1].numpy() for _ in range(2))
    assert not np.array_equal(first, second)
    ordered = make(x, np.arange(40), batch_size=40, shuffle=False)
    np.testing.assert_array_equal(next(iter(ordered))[1].numpy(), np.arange(40))


def test_gathered_dataset_keeps_the_feature_width_static() -> None:
    dataset = tfdata.gathered_dataset(make_sparse(10, features=7), np.arange(10), batch_size=4)
    assert dataset.element_spec[0].shape.as_list() == [None, 7]


def test_gathered_dataset_densify_gives_dense_rows() -> None:
    x = make_sparse(6)
    x_batch, rows = next(iter(tfdata.gathered_dataset(x, np.arange(6), 6, shuffle=False, densify=True)))
    assert isinstance(x_batch, tf.Tensor) and x_batch.dtype == tf.float32
    np.testing.assert_array_equal(x_batch.numpy(), x.toarray())


def test_gathered_dataset_orders_indices_of_unsorted_csr() -> None:
    x = sp.csr_matrix((np.array([1.0, 2.0], dtype=np.float32), np.array([3, 0]), np.array([0, 2])), shape=(1, 4))
    x_batch, _ = next(iter(tfdata.gathered_dataset(x, np.arange(1), 1, shuffle=False)))
    assert x_batch.indices.numpy().tolist() == [[0, 0], [0, 3]]
    assert not x.has_sorted_indices  # the caller's matrix is left as it was


def test_from_generator_dataset_yields_the_generators_batches() -> None:
    x = make_sparse(11)
    dataset = tfdata.from_generator_dataset(x, np.arange(11), batch_size=4, seed=5)
    assert dataset.element_spec[0].shape.as_list() == [None, 9]
    expected = itertools.islice(batch_generator(x, np.arange(11), 4, seed=5, sparse=True), 6)
    for (x_batch, rows), (x_expected, rows_expected) in zip(dataset.take(6), expected, strict=True):
        np.testing.assert_array_equal(rows.numpy(), rows_expected)
        np.testing.assert_array_equal(dense(x_batch), x_expected.toarray())


@pytest.mark.parametrize("make", [*EPOCH_PIPELINES, tfdata.from_generator_dataset])
def test_pipelines_reject_bad_arguments(make) -> None:
    with pytest.raises(ValueError, match="length mismatch"):
        make(make_sparse(4), np.arange(3), 2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        make(make_sparse(4), np.arange(4), 0)


def test_constant_batch_dataset_repeats_one_batch() -> None:
    batch = tf.constant(np.ones((2, 3), dtype=np.float32))
    elements = list(tfdata.constant_batch_dataset(batch, np.array([0.0, 1.0])).take(3))
    assert len(elements) == 3
    for x_batch, y_batch in elements:
        np.testing.assert_array_equal(x_batch.numpy(), batch.numpy())
        np.testing.assert_array_equal(y_batch.numpy(), [0.0, 1.0])
