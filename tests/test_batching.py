"""Tests of utils.batching: endless, seeded, exactly-once-per-epoch batch generators.

All data here is synthetic: small random sparse matrices whose labels are the row ids, so that every
batch says which rows it holds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
import scipy.sparse as sp

import utils.batching
from utils.batching import batch_generator, steps_per_epoch


def make_sparse(n: int, features: int = 12, seed: int = 0) -> sp.csr_matrix:
    """A random float64 CSR matrix of ``n`` rows (synthetic), every row non-empty."""
    x = sp.random(n, features, density=0.3, format="csr", random_state=seed)
    return (x + sp.eye(n, features, format="csr")).tocsr()


def make_unsorted_csr(n: int, features: int = 8, dtype: type = np.float32) -> sp.csr_matrix:
    """A CSR matrix (synthetic) whose rows store their column indices in descending order."""
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for row in range(n):
        cols = sorted({row % features, (row * 3 + 1) % features, (row * 5 + 2) % features}, reverse=True)
        indices += cols
        data += [float(row * features + c + 1) for c in cols]
        indptr.append(len(indices))
    x = sp.csr_matrix((np.array(data, dtype=dtype), np.array(indices), np.array(indptr)), shape=(n, features))
    assert not x.has_sorted_indices
    return x


def take_epochs(gen: Iterator, steps: int, epochs: int) -> list[list[tuple]]:
    """Consume ``epochs`` epochs of ``steps`` batches each from an endless generator."""
    return [[next(gen) for _ in range(steps)] for _ in range(epochs)]


def epoch_order(epoch: list[tuple]) -> np.ndarray:
    """Row ids of one epoch's batches, in the order they came (labels are row ids)."""
    return np.concatenate([yb for _, yb in epoch])


@pytest.mark.parametrize(("n", "batch_size"), [(10, 4), (12, 4), (7, 1), (5, 10), (1, 1), (33, 8)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_every_sample_exactly_once_per_epoch_with_partial_last_batch(n: int, batch_size: int,
                                                                    shuffle: bool) -> None:
    x = make_sparse(n)
    y = np.arange(n)
    steps = steps_per_epoch(n, batch_size)
    expected_sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    assert len(expected_sizes) == steps
    for epoch in take_epochs(batch_generator(x, y, batch_size, shuffle=shuffle), steps, 3):
        assert [len(yb) for _, yb in epoch] == expected_sizes
        assert [xb.shape[0] for xb, _ in epoch] == expected_sizes
        order = epoch_order(epoch)
        assert sorted(order.tolist()) == list(range(n))


def test_shuffle_changes_order_between_epochs() -> None:
    n, bs = 50, 8
    epochs = take_epochs(batch_generator(make_sparse(n), np.arange(n), bs, shuffle=True, seed=3),
                         steps_per_epoch(n, bs), 3)
    orders = [epoch_order(e) for e in epochs]
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])
    assert not np.array_equal(orders[0], np.arange(n))


def test_same_seed_identical_batches_different_seed_different() -> None:
    n, bs = 40, 16
    x, y = make_sparse(n), np.arange(n)
    steps = steps_per_epoch(n, bs)
    a = take_epochs(batch_generator(x, y, bs, seed=7), steps, 2)
    b = take_epochs(batch_generator(x, y, bs, seed=7), steps, 2)
    c = take_epochs(batch_generator(x, y, bs, seed=8), steps, 2)
    for epoch_a, epoch_b in zip(a, b, strict=True):
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b, strict=True):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(epoch_order(a[0]), epoch_order(c[0]))
    assert not np.array_equal(epoch_order(a[1]), epoch_order(c[1]))


def test_no_shuffle_keeps_stored_order_every_epoch() -> None:
    n, bs = 11, 3
    epochs = take_epochs(batch_generator(make_sparse(n), np.arange(n), bs, shuffle=False),
                         steps_per_epoch(n, bs), 3)
    for epoch in epochs:
        np.testing.assert_array_equal(epoch_order(epoch), np.arange(n))


def test_dense_batches_equal_sparse_rows_and_labels_match_rows() -> None:
    n, bs = 23, 5
    x = make_sparse(n)
    for xb, yb in take_epochs(batch_generator(x, np.arange(n), bs, seed=1), steps_per_epoch(n, bs), 2)[1]:
        assert isinstance(xb, np.ndarray)
        assert xb.dtype == np.float32
        np.testing.assert_array_equal(xb, x[yb].toarray().astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # float32: no conversion that could sort for free
def test_sparse_batches_are_sorted_float32_csr_equal_to_dense(dtype: type) -> None:
    n, bs = 17, 4
    x = make_unsorted_csr(n, dtype=dtype)
    y = np.arange(n)
    steps = steps_per_epoch(n, bs)
    sparse_epochs = take_epochs(batch_generator(x, y, bs, seed=5, sparse=True), steps, 2)
    dense_epochs = take_epochs(batch_generator(x, y, bs, seed=5, sparse=False), steps, 2)
    for sparse_epoch, dense_epoch in zip(sparse_epochs, dense_epochs, strict=True):
        for (xs, ys), (xd, yd) in zip(sparse_epoch, dense_epoch, strict=True):
            assert sp.issparse(xs) and xs.format == "csr"
            assert xs.has_sorted_indices
            assert all(np.all(np.diff(xs.indices[a:b]) > 0) for a, b in zip(xs.indptr[:-1], xs.indptr[1:],
                                                                           strict=True))
            assert xs.dtype == np.float32
            np.testing.assert_array_equal(ys, yd)
            np.testing.assert_array_equal(xs.toarray(), xd)
            np.testing.assert_array_equal(xd, x[yd].toarray())


def test_numpy_array_input_works() -> None:
    n, bs = 9, 4
    x = np.arange(n * 3, dtype=np.int64).reshape(n, 3)
    epoch = take_epochs(batch_generator(x, np.arange(n), bs, seed=2), steps_per_epoch(n, bs), 1)[0]
    assert sorted(epoch_order(epoch).tolist()) == list(range(n))
    for xb, yb in epoch:
        assert isinstance(xb, np.ndarray) and xb.dtype == np.float32
        np.testing.assert_array_equal(xb, x[yb].astype(np.float32))


@pytest.mark.parametrize(("n", "batch_size", "steps"), [(1, 1, 1), (10, 4, 3), (12, 4, 3), (5, 10, 1),
                                                        (25_000, 128, 196), (128, 128, 1), (129, 128, 2)])
def test_steps_per_epoch_values(n: int, batch_size: int, steps: int) -> None:
    assert steps_per_epoch(n, batch_size) == steps


@pytest.mark.parametrize(("n", "batch_size"), [(10, 0), (10, -1), (0, 4), (-3, 4)])
def test_steps_per_epoch_rejects_non_positive(n: int, batch_size: int) -> None:
    with pytest.raises(ValueError):
        steps_per_epoch(n, batch_size)


@pytest.mark.parametrize("batch_size", [0, -5])
def test_batch_size_below_one_raises_at_creation(batch_size: int) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        batch_generator(make_sparse(5), np.arange(5), batch_size)


def test_empty_input_raises_at_creation() -> None:
    with pytest.raises(ValueError, match="empty"):
        batch_generator(sp.csr_matrix((0, 4)), np.arange(0), 2)
    with pytest.raises(ValueError, match="empty"):
        batch_generator(np.zeros((0, 4)), np.arange(0), 2)


def test_length_mismatch_raises_at_creation() -> None:
    with pytest.raises(ValueError, match="length mismatch: x has 5 rows but y has 4 labels"):
        batch_generator(make_sparse(5), np.arange(4), 2)
    with pytest.raises(ValueError, match="x has 3 rows but y has 6 labels"):
        batch_generator(np.zeros((3, 2)), np.arange(6), 2)


def test_two_threads_advancing_one_generator_raise_already_executing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thread 1 is held inside the generator (take_rows blocks); thread 2's next() must be refused."""
    entered = threading.Event()
    release = threading.Event()
    real_take_rows = utils.batching.take_rows

    def blocking_take_rows(*args: object, **kwargs: object) -> object:
        entered.set()
        assert release.wait(10), "test did not release the blocked generator"
        return real_take_rows(*args, **kwargs)

    monkeypatch.setattr(utils.batching, "take_rows", blocking_take_rows)
    gen = batch_generator(make_sparse(8), np.arange(8), 4, seed=0)
    first: list[object] = []
    second: list[Exception] = []

    def advance_first() -> None:
        first.append(next(gen))

    def advance_second() -> None:
        try:
            next(gen)
        except Exception as exc:  # recorded for the assertion below
            second.append(exc)

    t1 = threading.Thread(target=advance_first, daemon=True)
    t1.start()
    try:
        assert entered.wait(10), "first thread never entered the generator"
        t2 = threading.Thread(target=advance_second, daemon=True)
        t2.start()
        t2.join(10)
        assert not t2.is_alive()
    finally:
        release.set()
        t1.join(10)
    assert len(second) == 1
    assert isinstance(second[0], ValueError)
    assert "generator already executing" in str(second[0])
    assert len(first) == 1  # the first thread still got its batch
    xb, yb = first[0]
    assert xb.shape == (4, 12) and len(yb) == 4
