"""Tests of utils.feature_cache: rows written once to random buckets, read back one bucket at a time.

All data here is synthetic: each row of a small sparse matrix carries its own row number, so the tests can see
which rows a batch holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from utils.feature_cache import CacheWriter, FeatureCache, buckets_for


def numbered_rows(n: int, columns: int = 50) -> tuple[sp.csr_matrix, np.ndarray]:
    """Synthetic rows: row i has value i + 1 in column i % columns and 1 in the last column; label i % 2."""
    rows = np.repeat(np.arange(n), 2)
    cols = np.column_stack([np.arange(n) % (columns - 1), np.full(n, columns - 1)]).ravel()
    vals = np.column_stack([np.arange(n) + 1.0, np.ones(n)]).ravel().astype(np.float32)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, columns)), np.arange(n) % 2


def write(directory: Path, x: sp.csr_matrix, y: np.ndarray, buckets: int, chunk: int = 30) -> FeatureCache:
    """Write ``x`` in chunks of ``chunk`` rows and return the cache."""
    with CacheWriter(directory, x.shape[1], buckets, seed=0) as writer:
        for start in range(0, x.shape[0], chunk):
            writer.add(x[start:start + chunk], y[start:start + chunk])
    return writer.cache


def row_ids(batch: sp.csr_matrix) -> list[int]:
    """The row numbers carried by a batch of numbered rows."""
    return [int(v) - 1 for v in batch.max(axis=1).toarray().ravel()]


def test_every_row_once_per_epoch_with_full_batches(tmp_path: Path) -> None:
    x, y = numbered_rows(203)
    cache = write(tmp_path / "c", x, y, buckets=5)
    assert cache.num_rows == 203 and cache.num_buckets == 5
    batches = list(cache.batches(16, rng=np.random.default_rng(0)))
    assert [len(b[1]) for b in batches] == [16] * 12 + [11]
    ids = [i for xb, _ in batches for i in row_ids(xb)]
    assert sorted(ids) == list(range(203))
    labels = np.concatenate([yb for _, yb in batches])
    np.testing.assert_array_equal(labels, np.array(ids) % 2)
    assert all(xb.has_sorted_indices for xb, _ in batches)


def test_buckets_mix_a_sorted_source(tmp_path: Path) -> None:
    x, y = numbered_rows(400)
    sorted_y = np.repeat([0, 1], 200)  # a file sorted by class
    cache = write(tmp_path / "c", x, sorted_y, buckets=8)
    for index in range(cache.num_buckets):
        _, labels = cache.read_bucket(index)
        assert 0.2 < labels.mean() < 0.8  # every bucket holds both classes
    first_batch = next(cache.batches(32, rng=np.random.default_rng(1)))[1]
    assert 0 < first_batch.mean() < 1


def test_new_order_every_epoch_and_reproducible(tmp_path: Path) -> None:
    x, y = numbered_rows(100)
    cache = write(tmp_path / "c", x, y, buckets=3)
    make = cache.epochs(10, seed=7)
    first = [i for xb, _ in make() for i in row_ids(xb)]
    second = [i for xb, _ in make() for i in row_ids(xb)]
    assert first != second and sorted(first) == sorted(second) == list(range(100))
    again = [i for xb, _ in cache.epochs(10, seed=7)() for i in row_ids(xb)]
    assert again == first


def test_no_shuffle_keeps_written_order_within_buckets(tmp_path: Path) -> None:
    x, y = numbered_rows(60)
    cache = write(tmp_path / "c", x, y, buckets=1)
    ids = [i for xb, _ in cache.batches(7, shuffle=False) for i in row_ids(xb)]
    assert ids == list(range(60))


def test_transform_applied_per_bucket(tmp_path: Path) -> None:
    x, y = numbered_rows(40)
    cache = write(tmp_path / "c", x, y, buckets=2)
    batches = list(cache.batches(8, transform=lambda rows: rows[:, -1:].tocsr() * 3, shuffle=False))
    assert all(xb.shape[1] == 1 for xb, _ in batches)
    assert sum(xb.sum() for xb, _ in batches) == 3 * 40


def test_failed_write_leaves_nothing_and_keeps_old_cache(tmp_path: Path) -> None:
    x, y = numbered_rows(20)
    write(tmp_path / "c", x, y, buckets=2)
    with pytest.raises(RuntimeError, match="interrupted"), CacheWriter(tmp_path / "c", 50, 2) as writer:
        writer.add(x[:10], y[:10])
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    assert FeatureCache(tmp_path / "c").num_rows == 20


def test_incomplete_cache_is_refused(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        FeatureCache(tmp_path / "half")


def test_add_checks_shapes(tmp_path: Path) -> None:
    x, y = numbered_rows(10)
    with CacheWriter(tmp_path / "c", 50, 2) as writer:
        with pytest.raises(ValueError, match="columns"):
            writer.add(x[:, :10], y)
        with pytest.raises(ValueError, match="labels"):
            writer.add(x, y[:5])
        writer.add(x, y)
    assert writer.cache.num_rows == 10


def test_buckets_for() -> None:
    assert buckets_for(20_000, 2000) == 10
    assert buckets_for(20_001, 2000) == 11
    assert buckets_for(0, 2000) == 1
    with pytest.raises(ValueError):
        buckets_for(10, 0)
