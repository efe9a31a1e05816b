"""Tests of utils.pydataset: index-addressed, seeded, exactly-once-per-epoch PyDatasets.

All data here is synthetic: small random sparse matrices whose labels are the row ids, so that every
batch says which rows it holds.
"""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from utils.pydataset import CsrBatches, TextBatches, epoch_order
from utils.sparse import to_tf_sparse


def make_sparse(n: int, features: int = 10, seed: int = 0) -> sp.csr_matrix:
    """A random float32 CSR matrix (synthetic) with every row non-empty."""
    x = sp.random(n, features, density=0.3, format="csr", random_state=seed, dtype=np.float32)
    return (x + sp.eye(n, features, format="csr", dtype=np.float32)).tocsr()


def epoch_rows(dataset: CsrBatches) -> list[np.ndarray]:
    """The label (= row id) arrays of every batch of the dataset's current epoch."""
    return [dataset[i][1] for i in range(len(dataset))]


def test_every_row_once_per_epoch_with_partial_last_batch() -> None:
    x = make_sparse(10)
    dataset = CsrBatches(x, np.arange(10), batch_size=4)
    assert len(dataset) == 3
    batches = epoch_rows(dataset)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches)) == list(range(10))


def test_batches_hold_the_rows_they_say() -> None:
    x = make_sparse(9)
    dataset = CsrBatches(x, np.arange(9), batch_size=4)
    x_batch, rows = dataset[1]
    np.testing.assert_array_equal(x_batch, x[rows].toarray())
    assert x_batch.dtype == np.float32


def test_sparse_batches_are_tf_sparse_tensors_equal_to_the_rows() -> None:
    x = make_sparse(9)
    dataset = CsrBatches(x, np.arange(9), batch_size=4, sparse=True)
    x_batch, rows = dataset[0]
    assert isinstance(x_batch, tf.SparseTensor)
    np.testing.assert_array_equal(tf.sparse.to_dense(x_batch).numpy(), x[rows].toarray())


def test_to_tf_sparse_orders_indices_even_when_csr_is_unsorted() -> None:
    x = sp.csr_matrix((np.array([1.0, 2.0], dtype=np.float32), np.array([3, 0]), np.array([0, 2])), shape=(1, 4))
    assert not x.has_sorted_indices
    sparse = to_tf_sparse(x)
    assert sparse.indices.numpy().tolist() == [[0, 0], [0, 3]]
    np.testing.assert_array_equal(tf.sparse.to_dense(sparse).numpy(), x.toarray())


def test_reshuffles_every_epoch_from_the_seed() -> None:
    dataset = CsrBatches(make_sparse(50), np.arange(50), batch_size=50, seed=3)
    first = dataset[0][1].copy()
    dataset.on_epoch_end()
    second = dataset[0][1]
    assert not np.array_equal(first, second)
    assert sorted(second) == list(range(50))
    again = CsrBatches(make_sparse(50), np.arange(50), batch_size=50, seed=3)
    np.testing.assert_array_equal(again[0][1], first)


def test_set_epoch_rebuilds_that_epochs_order_for_resuming() -> None:
    dataset = CsrBatches(make_sparse(30), np.arange(30), batch_size=30, seed=1)
    for _ in range(3):
        dataset.on_epoch_end()
    third = dataset[0][1].copy()
    fresh = CsrBatches(make_sparse(30), np.arange(30), batch_size=30, seed=1)
    fresh.set_epoch(3)
    np.testing.assert_array_equal(fresh[0][1], third)
    np.testing.assert_array_equal(third, epoch_order(30, 1, 3))


def test_no_shuffle_keeps_stored_order() -> None:
    dataset = CsrBatches(make_sparse(7), np.arange(7), batch_size=3, shuffle=False)
    dataset.on_epoch_end()
    np.testing.assert_array_equal(np.concatenate(epoch_rows(dataset)), np.arange(7))


def test_batch_index_out_of_range_raises_index_error() -> None:
    dataset = CsrBatches(make_sparse(7), np.arange(7), batch_size=3)
    with pytest.raises(IndexError, match="batch index 3 out of range for 3 batches"):
        dataset[3]


@pytest.mark.parametrize(("x", "y", "batch_size", "message"), [
    (make_sparse(4), np.arange(4), 0, "batch_size must be >= 1"),
    (sp.csr_matrix((0, 5)), np.arange(0), 2, "empty input"),
    (make_sparse(4), np.arange(3), 2, "length mismatch: x has 4 rows but y has 3 labels"),
])
def test_pydataset_bad_arguments_raise_at_construction(x, y, batch_size, message) -> None:
    with pytest.raises(ValueError, match=message):
        CsrBatches(x, y, batch_size)


def test_sparse_batches_with_multiprocessing_are_refused() -> None:
    with pytest.raises(ValueError, match="sparse=True needs threads"):
        CsrBatches(make_sparse(4), np.arange(4), 2, sparse=True, use_multiprocessing=True)


def test_unpicklable_pydataset_with_multiprocessing_raises_naming_the_attribute() -> None:
    lock = threading.Lock()  # a lock cannot be pickled

    def vectorize(texts: list[str]) -> sp.csr_matrix:
        with lock:
            return sp.csr_matrix(np.ones((len(texts), 2), dtype=np.float32))

    texts, labels = ["a", "b", "c"], np.arange(3)
    with pytest.raises(TypeError, match=r"TextBatches cannot be pickled.*unpicklable attribute\(s\): vectorize"):
        TextBatches(texts, labels, vectorize, batch_size=2, use_multiprocessing=True)
    TextBatches(texts, labels, vectorize, batch_size=2)  # threads need no pickling: accepted


def test_picklable_pydataset_with_multiprocessing_is_accepted() -> None:
    dataset = CsrBatches(make_sparse(6), np.arange(6), 2, use_multiprocessing=True, workers=2)
    assert dataset.use_multiprocessing and dataset.workers == 2


def test_text_batches_vectorize_each_batch_on_request() -> None:
    texts = [f"text {i}" for i in range(5)]
    calls: list[list[str]] = []

    def vectorize(batch: list[str]) -> sp.csr_matrix:
        calls.append(batch)
        return sp.csr_matrix(np.array([[float(t.split()[1])] for t in batch], dtype=np.float32))

    dataset = TextBatches(texts, np.arange(5), vectorize, batch_size=2, seed=0)
    x_batch, rows = dataset[0]
    assert calls == [[texts[i] for i in rows]]
    np.testing.assert_array_equal(x_batch[:, 0], rows.astype(np.float32))


@pytest.mark.parametrize(("texts", "labels", "message"), [
    ([], np.arange(0), "empty input"),
    (["a", "b"], np.arange(3), "length mismatch: 2 texts but 3 labels"),
])
def test_text_batches_bad_arguments(texts, labels, message) -> None:
    with pytest.raises(ValueError, match=message):
        TextBatches(texts, labels, lambda batch: sp.csr_matrix((len(batch), 1)), batch_size=2)


@pytest.mark.parametrize("workers", [1, 2])
def test_keras_fit_sees_every_row_once_per_epoch_with_threads(workers: int) -> None:
    """A model that sums its inputs' row ids: fit must visit each sample exactly once per epoch."""
    n = 20
    x = np.arange(n, dtype=np.float32)[:, None]
    seen: list[np.ndarray] = []

    class Recording(CsrBatches):
        def __getitem__(self, index: int):
            batch = super().__getitem__(index)
            seen.append(batch[1])
            return batch

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    dataset = Recording(x, np.arange(n, dtype=np.float32), batch_size=6, workers=workers)
    model.fit(dataset, epochs=2, verbose=0)
    # Keras reads two batches up front to learn the shapes; after those, two full epochs.
    rows = np.concatenate(seen[2:])
    assert len(rows) == 2 * n
    assert sorted(rows[:n]) == list(range(n)) and sorted(rows[n:]) == list(range(n))
    assert not np.array_equal(rows[:n], rows[n:])
