"""Tests of utils.shards: sparse rows written as TFRecord shards and read back through tf.data.

All data here is synthetic: small random sparse matrices (some rows empty, some with unsorted column
indices) whose labels are the row ids, so that every parsed batch says which rows it holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

import utils.shards
from utils.shards import make_dataset, read_manifest, write_shards

NUM_FEATURES = 13


def make_rows(n: int, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """``n`` synthetic sparse rows (every fifth one empty) and labels equal to the row ids."""
    x = sp.random(n, NUM_FEATURES, density=0.3, format="lil", random_state=seed, dtype=np.float32)
    for row in range(0, n, 5):
        x[row, :] = 0
    return x.tocsr(), np.arange(n, dtype=np.int64)


def read_all(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate a finite dataset's ``(x, y)`` batches into dense numpy arrays."""
    xs, ys = [], []
    for x, y in dataset:
        xs.append(tf.sparse.to_dense(x).numpy() if isinstance(x, tf.SparseTensor) else x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, utils.shards.ShardManifest, sp.csr_matrix, np.ndarray]:
    """37 synthetic rows written as 4 shards."""
    x, y = make_rows(37)
    return tmp_path, write_shards(x, y, tmp_path, "train", num_shards=4), x, y


def test_manifest_describes_the_files(written) -> None:
    directory, manifest, x, _ = written
    assert manifest.num_features == NUM_FEATURES and manifest.num_rows == 37
    assert manifest.rows_per_file == (10, 9, 9, 9)
    generation = manifest.files[0].split("-")[1]
    assert manifest.files == tuple(f"train-{generation}-{k:05d}-of-00004.tfrecord" for k in range(4))
    assert read_manifest(directory, "train") == manifest
    assert sorted(p.name for p in directory.iterdir()) == sorted([*manifest.files, "train.json"])


def test_each_shard_holds_every_nth_row_in_order(written) -> None:
    directory, manifest, x, y = written
    for k, path in enumerate(manifest.paths(directory)):
        got_x, got_y = read_all(make_dataset([path], NUM_FEATURES, batch_size=4))
        np.testing.assert_array_equal(got_y, y[k::4])
        np.testing.assert_array_equal(got_x, x[k::4].toarray())


@pytest.mark.parametrize("sparse", [True, False])
def test_round_trip_of_all_rows(written, sparse: bool) -> None:
    directory, manifest, x, _ = written
    dataset = make_dataset(manifest.paths(directory), NUM_FEATURES, batch_size=8, sparse=sparse)
    first_x, _ = next(iter(dataset))
    assert isinstance(first_x, tf.SparseTensor) == sparse
    assert tuple(first_x.shape) == (8, NUM_FEATURES)
    got_x, got_y = read_all(dataset)
    assert sorted(got_y.tolist()) == list(range(37))
    np.testing.assert_array_equal(got_x, x[got_y].toarray())


def test_unsorted_column_indices_are_stored_sorted(tmp_path: Path) -> None:
    x = sp.csr_matrix((np.array([0.5, 0.7, 0.2], np.float32), np.array([9, 3, 10]), np.array([0, 2, 3])),
                      shape=(2, NUM_FEATURES))
    assert not x.has_sorted_indices
    manifest = write_shards(x, np.array([0, 1]), tmp_path, "rows", num_shards=1)
    batch, _ = next(iter(make_dataset(manifest.paths(tmp_path), NUM_FEATURES, batch_size=2)))
    np.testing.assert_array_equal(batch.indices.numpy(), [[0, 3], [0, 9], [1, 10]])
    np.testing.assert_array_equal(tf.sparse.to_dense(batch).numpy(), x.toarray())


def test_worker_shards_split_the_files_without_overlap(written) -> None:
    directory, manifest, _, _ = written
    seen = [read_all(make_dataset(manifest.paths(directory), NUM_FEATURES, 5, shard=(2, i)))[1] for i in range(2)]
    assert set(seen[0]) & set(seen[1]) == set()
    assert sorted(np.concatenate(seen).tolist()) == list(range(37))
    assert set(seen[0]) == {row for row in range(37) if row % 4 in (0, 2)}


def test_shuffling_is_seeded_and_changes_every_epoch(written) -> None:
    directory, manifest, _, _ = written

    def epochs(seed: int) -> list[list[int]]:
        dataset = make_dataset(manifest.paths(directory), NUM_FEATURES, 37, shuffle=True, seed=seed, repeat=True)
        return [y.numpy().tolist() for _, y in dataset.take(2)]

    first, again = epochs(7), epochs(7)
    assert first == again
    assert first[0] != first[1] and sorted(first[0]) == sorted(first[1]) == list(range(37))
    assert epochs(8) != first


def test_remainder_is_kept_or_dropped(written) -> None:
    directory, manifest, _, _ = written
    sizes = [len(y) for _, y in make_dataset(manifest.paths(directory), NUM_FEATURES, 10)]
    assert sizes == [10, 10, 10, 7]
    sizes = [len(y) for _, y in make_dataset(manifest.paths(directory), NUM_FEATURES, 10, drop_remainder=True)]
    assert sizes == [10, 10, 10]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"x": np.zeros((3, 2))}, "scipy sparse"),
    ({"y": np.arange(4)}, "3 rows but y has 4 labels"),
    ({"num_shards": 0}, "num_shards must be between 1 and"),
    ({"num_shards": 4}, "num_shards must be between 1 and"),
    ({"name": "../train"}, "name must be"),
    ({"y": np.array([0.0, 1.0, 0.0])}, "labels must be integers"),
    ({"x": sp.csr_matrix((0, 2)), "y": np.arange(0)}, "0 rows"),
])
def test_write_refuses_bad_input(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"x": sp.eye(3, 2, format="csr"), "y": np.arange(3), "directory": tmp_path, "name": "t", "num_shards": 2}
    with pytest.raises(ValueError, match=message):
        write_shards(**{**args, **kwargs})
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = make_rows(20)
    calls = {"n": 0}
    real_example = utils.shards._example

    def failing_example(*args):
        calls["n"] += 1
        if calls["n"] == 15:
            raise OSError("disk full (simulated)")
        return real_example(*args)

    monkeypatch.setattr(utils.shards, "_example", failing_example)
    with pytest.raises(OSError, match="disk full"):
        write_shards(x, y, tmp_path, "train", num_shards=3)
    assert list(tmp_path.iterdir()) == []


def test_read_manifest_names_what_is_missing(written) -> None:
    directory, manifest, _, _ = written
    with pytest.raises(FileNotFoundError, match="no shard manifest"):
        read_manifest(directory, "val")
    (directory / manifest.files[2]).unlink()
    with pytest.raises(FileNotFoundError, match=manifest.files[2]):
        read_manifest(directory, "train")


def test_read_manifest_refuses_another_format_version(written) -> None:
    directory, _, _, _ = written
    path = directory / "train.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 99}))
    with pytest.raises(ValueError, match="format version 99"):
        read_manifest(directory, "train")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"files": []}, "no shard files"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"shuffle_buffer": 0}, "shuffle_buffer must be >= 1"),
    ({"shard": (2, 2)}, r"shard index must be in \[0, 2\)"),
    ({"shard": (5, 0)}, "4 files cannot be split between 5 workers"),
])
def test_make_dataset_refuses_bad_arguments(written, kwargs: dict, message: str) -> None:
    directory, manifest, _, _ = written
    args = {"files": manifest.paths(directory), "num_features": NUM_FEATURES, "batch_size": 4}
    with pytest.raises(ValueError, match=message):
        make_dataset(**{**args, **kwargs})
