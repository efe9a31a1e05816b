"""Interrupted writes: every file the series writes is found whole afterwards, as the old version or the new one.

The writers: ``utils.results.save_run``, ``TrainConfig.save`` and the benchmarks' ``--json`` (all
``utils.processes.write_json``), ``save_training_data`` and ``save_weights`` (``np.savez``), a Keras model saved
through ``atomic_write`` (the multi-worker chief's ``model.keras``), ``AtomicModelCheckpoint``, ``CacheWriter``
(read with ``FeatureCache``) and ``write_shards`` (read with ``read_manifest`` and ``make_dataset``).

* **ENOSPC injected.** Version A is written; version B is attempted with ``OSError(ENOSPC)`` raised at each point
  of its sequence that matters: part-way through the data (the lowest-level write stores part of it, then
  raises), after the data but before the rename (``os.fsync``), at the rename (``os.replace``), and for the folder
  formats between the commit (``meta.json`` or the manifest replaced) and the removal of the old generation. The
  reader must return exactly A, or exactly B where the failure came after the commit point, and nothing
  temporary may be left next to the target.
* **Killed.** Child processes write A, start a large B, create a marker at a chosen point of the write and
  sleep; they are SIGKILLed there. A (or B, past the commit) must read whole, and a later write C must succeed
  and leave nothing stale behind.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import numpy.lib.format
import pytest
import scipy.sparse as sp
import tensorflow as tf

from utils import REPO_ROOT, processes
from utils.callbacks import AtomicModelCheckpoint
from utils.feature_cache import META_FILE, CacheWriter, FeatureCache
from utils.memory import MemoryTimeline
from utils.models import build_mlp
from utils.multi_worker import TrainConfig
from utils.plots import Run
from utils.processes import atomic_write, kill_when_marked, log_text, write_json
from utils.results import load_run, save_run
from utils.resumable import load_training_data, load_weights, save_training_data, save_weights
from utils.shards import make_dataset, read_manifest, write_shards

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

# --------------------------------------------------------------------------------------------- versions and faults

NUM_FEATURES = 12
#: Rows of each version of the folder formats; labels number them from the version's own offset, so that a
#: reader returning a mix of two versions is caught.
ROWS = {"A": 40, "B": 300, "C": 60}
LABEL_OFFSET = {"A": 0, "B": 10_000, "C": 20_000}
CHUNK = 20
SHARDS = 3
SHARD_NAME = "train"


def enospc() -> OSError:
    """The error a full disk raises."""
    return OSError(errno.ENOSPC, "No space left on device")


def inject(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, *, call: int = 1,
           when: Callable[..., bool] = lambda *args, **kwargs: True,
           partial: Callable[..., object] | None = None) -> None:
    """Make ``owner.name`` raise ENOSPC at its ``call``-th call that ``when`` accepts (the others run as usual).

    ``partial(real, *args, **kwargs)`` runs first, to store part of the data as a disk filling up would.
    """
    real = getattr(owner, name)
    seen = [0]

    def faulty(*args: Any, **kwargs: Any) -> Any:
        if when(*args, **kwargs):
            seen[0] += 1
            if seen[0] == call:
                if partial is not None:
                    partial(real, *args, **kwargs)
                raise enospc()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, faulty)


def write_half_text(real: Callable[..., object], path: Path, text: str, *args: Any, **kwargs: Any) -> None:
    """``Path.write_text`` cut short: the first half of the text."""
    real(path, text[: len(text) // 2], *args, **kwargs)


def write_half_array(real: Callable[..., object], handle: Any, array: np.ndarray, *args: Any, **kwargs: Any) -> None:
    """``np.save`` or ``format.write_array`` cut short: the first half of the array's bytes, no header."""
    handle.write(np.ascontiguousarray(array).tobytes()[: array.nbytes // 2])


def save_half_model(real: Callable[..., object], model: keras.Model, path: Path, *args: Any, **kwargs: Any) -> None:
    """``keras.Model.save`` cut short: the first half of a real ``.keras`` file."""
    real(model, path, *args, **kwargs)
    os.truncate(path, os.path.getsize(path) // 2)


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def names(folder: Path) -> list[str]:
    """The names in ``folder``, sorted."""
    return sorted(path.name for path in folder.iterdir())


def assert_same(actual: object, expected: object) -> None:
    """Assert that a value read back equals the one written: through tuples, lists and dicts, arrays exactly."""
    if sp.issparse(expected):
        assert sp.issparse(actual) and actual.shape == expected.shape and actual.dtype == expected.dtype
        assert (actual != expected).nnz == 0
    elif isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray) and actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)
    elif isinstance(expected, tuple | list):
        assert isinstance(actual, tuple | list) and len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys()
        for key in expected:
            assert_same(actual[key], expected[key])
    else:
        assert actual == expected


def version_rows(version: str) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse rows of one version: random values of its own, labels numbering its rows from its offset."""
    x = sp.random(ROWS[version], NUM_FEATURES, density=0.4, format="csr", dtype=np.float32,
                  random_state=ord(version))
    return x, np.arange(ROWS[version], dtype=np.int64) + LABEL_OFFSET[version]


def expected_rows(version: str) -> tuple[np.ndarray, np.ndarray]:
    """What reading a version of a folder format back must give: dense rows in label order, and the labels."""
    x, y = version_rows(version)
    return x.toarray(), y


@functools.cache
def tiny_model() -> keras.Model:
    """The one small model of this module: the series' MLP on 4 features, 2 units."""
    return build_mlp(4, 2, units=2)


def set_version_weights(model: keras.Model, version: str) -> None:
    """Give every weight of ``model`` a value that says which version it is."""
    for index, variable in enumerate(model.trainable_variables):
        variable.assign(np.full(variable.shape, ord(version) + index, dtype=variable.dtype))


# --------------------------------------------------------------------------------------------- single files


@dataclass(frozen=True)
class FileWriter:
    """A writer of one file: the file's name, how to write a version into a folder and read it back.

    Attributes:
        target: the file's name inside the folder.
        write: writes a version into a folder; returns what ``read`` must then return.
        read: reads the file back the way the series does.
        cut_data: makes the writer's lowest-level data write store part of the data and raise ENOSPC.
    """

    target: str
    write: Callable[[Path, str], object]
    read: Callable[[Path], object]
    cut_data: Callable[[pytest.MonkeyPatch], None]


def run_version(version: str) -> tuple[Run, dict[str, Any]]:
    """A run and its figures, as a notebook saves them; B is the longer one (below save_run's thinning)."""
    samples = 5 if version == "A" else 500
    times = [0.1 * i for i in range(samples)]
    memory = MemoryTimeline(times, [1_000_000 + 7 * i for i in range(samples)], [(times[-1], f"epoch 1 ({version})")])
    history = {"loss": [0.7, 0.5, 0.4 if version == "A" else 0.3], "accuracy": [0.5, 0.6, 0.7]}
    return Run(f"run {version}", history, memory), {"version": version, "ms_per_step": 2.5}


def write_run(folder: Path, version: str) -> object:
    """``save_run`` of a version into ``folder``; return what ``load_run`` must give."""
    run, figures = run_version(version)
    save_run("run", run, figures, results_dir=folder)
    return run_version(version)


def config_version(version: str) -> TrainConfig:
    """A multi-worker run's configuration; B's shard folder is a long name, for a longer file."""
    return TrainConfig(shard_dir="shards-A") if version == "A" else TrainConfig(shard_dir="s" * 5_000, epochs=7)


def write_config(folder: Path, version: str) -> object:
    """``TrainConfig.save`` of a version; return the configuration."""
    config_version(version).save(folder / "config.json")
    return config_version(version)


def bench_version(version: str) -> list[dict[str, Any]]:
    """What a benchmark writes with ``--json``: a list of results, one per pipeline or point."""
    count = 2 if version == "A" else 400
    return [{"pipeline": f"{version}-{i}", "ms_per_step": 0.25 * i, "peak_rss_mb": 100.0 + i} for i in range(count)]


def write_bench(folder: Path, version: str) -> object:
    """A benchmark's ``--json`` file of a version (``write_json``); return the results."""
    write_json(folder / "bench.json", bench_version(version))
    return bench_version(version)


def write_training_data(folder: Path, version: str) -> object:
    """``save_training_data`` of a version (sparse training rows, dense validation rows); return them."""
    x, y = version_rows(version)
    labels, x_val = y % 2, x[:10].toarray()
    save_training_data(folder / "data.npz", x, labels, x_val, labels[:10], num_classes=2)
    return x, labels, x_val, labels[:10], 2


def write_weights(folder: Path, version: str) -> object:
    """``save_weights`` of the tiny model holding a version's weights; return every variable by path."""
    model = tiny_model()
    set_version_weights(model, version)
    save_weights(model, folder / "weights.npz")
    return {variable.path: variable.numpy() for variable in model.variables}


def write_keras_model(folder: Path, version: str) -> object:
    """As the multi-worker chief saves its model after every epoch."""
    model = tiny_model()
    set_version_weights(model, version)
    with atomic_write(folder / "model.keras") as tmp:
        model.save(tmp)
    return model.get_weights()


def cut_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON writers' data write: ``Path.write_text`` stores half the text, then ENOSPC."""
    inject(monkeypatch, Path, "write_text", partial=write_half_text)


def cut_npz(monkeypatch: pytest.MonkeyPatch) -> None:
    """``np.savez`` writes one array after the other into the zip: the second stores half its bytes, then ENOSPC."""
    inject(monkeypatch, numpy.lib.format, "write_array", call=2, partial=write_half_array)


def cut_keras_save(monkeypatch: pytest.MonkeyPatch) -> None:
    """``model.save`` stores half of the ``.keras`` file, then ENOSPC."""
    inject(monkeypatch, keras.Model, "save", partial=save_half_model)


FILE_WRITERS = {
    "save_run": FileWriter("run.json", write_run, lambda folder: load_run("run", folder), cut_text),
    "TrainConfig.save": FileWriter("config.json", write_config,
                                   lambda folder: TrainConfig.load(folder / "config.json"), cut_text),
    "bench --json": FileWriter("bench.json", write_bench,
                               lambda folder: json.loads((folder / "bench.json").read_text()), cut_text),
    "save_training_data": FileWriter("data.npz", write_training_data,
                                     lambda folder: load_training_data(folder / "data.npz"), cut_npz),
    "save_weights": FileWriter("weights.npz", write_weights, lambda folder: load_weights(folder / "weights.npz"),
                               cut_npz),
    "keras model via atomic_write": FileWriter(
        "model.keras", write_keras_model,
        lambda folder: keras.saving.load_model(folder / "model.keras").get_weights(), cut_keras_save),
}


@pytest.mark.parametrize("point", ["data", "fsync", "rename"])
@pytest.mark.parametrize("writer", list(FILE_WRITERS))
def test_file_writer_interrupted_by_enospc_leaves_the_old_file_whole(writer: str, point: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec = FILE_WRITERS[writer]
    target = tmp_path / spec.target
    version_a = spec.write(tmp_path, "A")
    if point == "data":  # part of the data written, then the disk is full
        spec.cut_data(monkeypatch)
    elif point == "fsync":  # all the data written, flushing it to disk fails
        inject(monkeypatch, os, "fsync")
    else:  # the data on disk, the rename onto the target fails
        inject(monkeypatch, os, "replace", when=lambda src, dst: Path(dst) == target)
    with pytest.raises(OSError) as failure:
        spec.write(tmp_path, "B")
    monkeypatch.undo()
    assert failure.value.errno == errno.ENOSPC
    assert_same(spec.read(tmp_path), version_a)
    assert names(tmp_path) == [spec.target]  # no temporary file left
    version_b = spec.write(tmp_path, "B")  # and the next write goes through
    assert_same(spec.read(tmp_path), version_b)


# --------------------------------------------------------------------------------------------- AtomicModelCheckpoint


def checkpoint_data() -> tuple[np.ndarray, np.ndarray]:
    """32 random rows of 4 features, and binary labels."""
    x = np.random.default_rng(0).random((32, 4), dtype=np.float32)
    return x, (x[:, 0] > 0.5).astype(np.float32)


def write_garbage(real: Callable[..., object], model: keras.Model, path: str, *args: Any, **kwargs: Any) -> None:
    """``keras.Model.save`` failing midway: the start of a zip file, then nothing sensible."""
    Path(path).write_bytes(b"PK\x03\x04" + bytes(256))


@pytest.fixture(scope="module")
def interrupted_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray], OSError]:
    """Two epochs checkpointed, then the save of epoch 3 fails midway: (folder, epoch 2's weights, the error)."""
    folder = tmp_path_factory.mktemp("checkpoint")
    model = tiny_model()
    x, y = checkpoint_data()
    checkpoint = AtomicModelCheckpoint(folder / "best.keras")
    model.fit(x, y, epochs=2, batch_size=8, callbacks=[checkpoint], verbose=0)
    epoch_2 = model.get_weights()
    with pytest.MonkeyPatch.context() as monkeypatch:
        inject(monkeypatch, keras.Model, "save", partial=write_garbage)
        with pytest.raises(OSError) as failure:
            model.fit(x, y, initial_epoch=2, epochs=3, batch_size=8, callbacks=[checkpoint], verbose=0)
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), epoch_2, strict=True))
    return folder, epoch_2, failure.value


def test_atomic_model_checkpoint_interrupted_by_enospc_in_epoch_3_keeps_epoch_2(
        interrupted_checkpoint: tuple[Path, list[np.ndarray], OSError]) -> None:
    folder, epoch_2, error = interrupted_checkpoint
    assert error.errno == errno.ENOSPC
    assert_same(keras.saving.load_model(folder / "best.keras").get_weights(), epoch_2)


def test_atomic_model_checkpoint_interrupted_by_enospc_leaves_no_partial_file(
        interrupted_checkpoint: tuple[Path, list[np.ndarray], OSError]) -> None:
    folder, _, _ = interrupted_checkpoint
    assert names(folder) == ["best.keras"]


def test_atomic_model_checkpoint_never_promotes_a_partial_file_left_by_a_killed_save(tmp_path: Path) -> None:
    model = tiny_model()
    x, y = checkpoint_data()
    best = tmp_path / "best.keras"
    first = AtomicModelCheckpoint(best, monitor="loss", save_best_only=True)
    model.fit(x, y, epochs=1, batch_size=8, callbacks=[first], verbose=0)
    saved, saved_digest = model.get_weights(), digest(best)
    # A process killed while Keras writes the next save leaves the first part of a .keras file under the
    # callback's temporary name.
    scratch = tmp_path / "scratch.keras"
    model.save(scratch)
    partial = Path(first.filepath)
    partial.write_bytes(scratch.read_bytes()[: scratch.stat().st_size // 2])
    scratch.unlink()
    # The restarted run (utils.resumable.train) starts from the best loss so far; an epoch that does not beat it
    # is not saved. (No loss beats 0.)
    restarted = AtomicModelCheckpoint(best, monitor="loss", save_best_only=True, initial_value_threshold=0.0)
    model.fit(x, y, epochs=1, batch_size=8, callbacks=[restarted], verbose=0)
    assert digest(best) == saved_digest, f"{best.name} was replaced in an epoch that saved nothing"
    assert_same(keras.saving.load_model(best).get_weights(), saved)


# --------------------------------------------------------------------------------------------- folder formats


def write_cache(folder: Path, version: str) -> None:
    """Write a version's rows as a two-bucket feature cache, in chunks of CHUNK rows."""
    x, y = version_rows(version)
    with CacheWriter(folder, NUM_FEATURES, num_buckets=2, seed=0) as writer:
        for start in range(0, len(y), CHUNK):
            writer.add(x[start:start + CHUNK], y[start:start + CHUNK])


def read_cache(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every row of the cache at ``folder``, dense, in label order, and the labels."""
    cache = FeatureCache(folder)
    buckets = [cache.read_bucket(index) for index in range(cache.num_buckets)]
    x = sp.vstack([rows for rows, _ in buckets]).toarray()
    y = np.concatenate([labels for _, labels in buckets])
    assert len(y) == cache.num_rows
    order = np.argsort(y)
    return x[order], y[order]


def clean_cache(folder: Path) -> list[str]:
    """What a cache folder holds when nothing is left over: meta.json and the generation it names."""
    return sorted([META_FILE, FeatureCache(folder).generation.name])


def write_shards_version(folder: Path, version: str) -> None:
    """Write a version's rows as SHARDS TFRecord shards."""
    write_shards(*version_rows(version), folder, SHARD_NAME, SHARDS)


def read_shards(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every row the manifest at ``folder`` names, read through tf.data, dense, in label order, and the labels."""
    manifest = read_manifest(folder, SHARD_NAME)
    xs, ys = [], []
    for x, y in make_dataset(manifest.paths(folder), manifest.num_features, batch_size=64, sparse=False):
        xs.append(x.numpy())
        ys.append(y.numpy())
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert len(y) == manifest.num_rows
    order = np.argsort(y)
    return x[order], y[order]


def clean_shards(folder: Path) -> list[str]:
    """What a shard folder holds when nothing is left over: the manifest and the shards it names."""
    return sorted([f"{SHARD_NAME}.json", *read_manifest(folder, SHARD_NAME).files])


#: Point of the CacheWriter sequence -> the version the cache must read as after a failure there.
CACHE_POINTS = {
    "bucket data": "A",  # np.save of a piece cut short, in the second chunk
    "generation rename": "A",  # the staging folder renamed to a generation
    "meta.json data": "A",
    "meta.json fsync": "A",
    "meta.json rename": "A",
    "old generation removal": "B",  # after the commit
}


def inject_into_cache_writer(monkeypatch: pytest.MonkeyPatch, point: str, folder: Path) -> None:
    """Make the next CacheWriter into ``folder`` fail with ENOSPC at ``point``."""
    if point == "bucket data":  # a chunk is four np.save calls per bucket: call 10 is in the second chunk
        inject(monkeypatch, np, "save", call=10, partial=write_half_array)
    elif point == "generation rename":
        inject(monkeypatch, os, "replace", when=lambda src, dst: Path(src).name.startswith(".cache-"))
    elif point == "meta.json data":
        inject(monkeypatch, Path, "write_text", partial=write_half_text)
    elif point == "meta.json fsync":  # flushing the finished meta.json before its rename
        inject(monkeypatch, processes, "fsync_path", when=lambda path: path.name.startswith(f".{META_FILE}.partial"))
    elif point == "meta.json rename":
        inject(monkeypatch, os, "replace", when=lambda src, dst: Path(dst).name == META_FILE)
    else:  # CacheWriter removes with ignore_errors=True: this stands for any failure past the commit
        old = FeatureCache(folder).generation.name
        inject(monkeypatch, shutil, "rmtree", when=lambda path, *args, **kwargs: Path(path).name == old)


@pytest.mark.parametrize("point", CACHE_POINTS)
def test_cache_writer_interrupted_by_enospc_reads_the_old_or_the_new_cache(point: str, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    write_cache(folder, "A")
    inject_into_cache_writer(monkeypatch, point, folder)
    with pytest.raises(OSError) as failure:
        write_cache(folder, "B")
    monkeypatch.undo()
    assert failure.value.errno == errno.ENOSPC
    assert_same(read_cache(folder), expected_rows(CACHE_POINTS[point]))
    write_cache(folder, "C")
    assert_same(read_cache(folder), expected_rows("C"))


@pytest.mark.parametrize("point", CACHE_POINTS)
def test_cache_writer_interrupted_by_enospc_leaves_no_partial_folder(point: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    write_cache(folder, "A")
    old = FeatureCache(folder).generation.name
    inject_into_cache_writer(monkeypatch, point, folder)
    with pytest.raises(OSError):
        write_cache(folder, "B")
    monkeypatch.undo()
    # Past the commit, the old generation whose removal failed may stay (whole); the next write removes it.
    kept_old = [old] if CACHE_POINTS[point] == "B" else []
    assert names(folder) == sorted([*clean_cache(folder), *kept_old])
    write_cache(folder, "C")
    assert names(folder) == clean_cache(folder)


#: Point of the write_shards sequence -> the version the shards must read as after a failure there.
SHARD_POINTS = {
    "record": "A",  # TFRecordWriter.write fails half-way through the second shard
    "shard fsync": "A",  # of the second shard
    "shard rename": "A",  # of the second shard
    "manifest data": "A",
    "manifest fsync": "A",
    "manifest rename": "A",
    "old shard removal": "B",  # after the commit
}


def inject_into_write_shards(monkeypatch: pytest.MonkeyPatch, point: str, folder: Path) -> None:
    """Make the next write_shards of version B into ``folder`` fail with ENOSPC at ``point``."""
    per_shard = ROWS["B"] // SHARDS
    if point == "record":
        inject(monkeypatch, tf.io.TFRecordWriter, "write", call=per_shard + per_shard // 2)
    elif point == "shard fsync":
        inject(monkeypatch, processes, "fsync_path", call=2, when=lambda path: path.suffix == ".tfrecord")
    elif point == "shard rename":
        inject(monkeypatch, os, "replace", call=2, when=lambda src, dst: Path(dst).suffix == ".tfrecord")
    elif point == "manifest data":
        inject(monkeypatch, Path, "write_text", partial=write_half_text)
    elif point == "manifest fsync":
        inject(monkeypatch, processes, "fsync_path", when=lambda path: path.name.startswith(f".{SHARD_NAME}.json."))
    elif point == "manifest rename":
        inject(monkeypatch, os, "replace", when=lambda src, dst: Path(dst).name == f"{SHARD_NAME}.json")
    else:
        old = set(read_manifest(folder, SHARD_NAME).files)
        inject(monkeypatch, Path, "unlink", when=lambda path, *args, **kwargs: path.name in old)


@pytest.mark.parametrize("point", SHARD_POINTS)
def test_write_shards_interrupted_by_enospc_reads_the_old_or_the_new_shards(point: str, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    write_shards_version(tmp_path, "A")
    shards_a = list(read_manifest(tmp_path, SHARD_NAME).files)
    inject_into_write_shards(monkeypatch, point, tmp_path)
    with pytest.raises(OSError) as failure:
        write_shards_version(tmp_path, "B")
    monkeypatch.undo()
    assert failure.value.errno == errno.ENOSPC
    assert_same(read_shards(tmp_path), expected_rows(SHARD_POINTS[point]))
    # No temporary file and none of B's shards left; past the commit, A's shards whose removal failed may stay.
    kept_old = shards_a if SHARD_POINTS[point] == "B" else []
    assert names(tmp_path) == sorted([*clean_shards(tmp_path), *kept_old])
    write_shards_version(tmp_path, "C")
    assert_same(read_shards(tmp_path), expected_rows("C"))


def test_write_shards_interrupted_after_the_commit_leaves_nothing_after_the_next_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_shards_version(tmp_path, "A")
    inject_into_write_shards(monkeypatch, "old shard removal", tmp_path)
    with pytest.raises(OSError):
        write_shards_version(tmp_path, "B")
    monkeypatch.undo()
    write_shards_version(tmp_path, "C")
    assert names(tmp_path) == clean_shards(tmp_path)


# --------------------------------------------------------------------------------------------- real kills

#: The bytes of version A of the file written with atomic_write by a child; B is 16 MiB.
BLOB_A = b"version A\n" * 1_000


@dataclass(frozen=True)
class Format:
    """How the parent writes, reads and lists one format of the kill scenarios.

    Attributes:
        write: writes a version into a folder.
        read: reads the folder back.
        expected: what ``read`` must return for a version.
        clean: the names the folder holds when nothing is left over.
    """

    write: Callable[[Path, str], None]
    read: Callable[[Path], object]
    expected: Callable[[str], object]
    clean: Callable[[Path], list[str]]


def write_blob(folder: Path, version: str) -> None:
    """Write a version of ``file.bin`` with ``atomic_write``."""
    with atomic_write(folder / "file.bin") as tmp:
        tmp.write_bytes({"A": BLOB_A, "C": b"version C\n"}[version])


FORMATS = {
    "atomic_write": Format(write_blob, lambda folder: (folder / "file.bin").read_bytes(),
                           lambda version: {"A": BLOB_A, "C": b"version C\n"}[version], lambda folder: ["file.bin"]),
    "cache": Format(write_cache, read_cache, expected_rows, clean_cache),
    "shards": Format(write_shards_version, read_shards, expected_rows, clean_shards),
}

#: "<format>:<point>" -> the version the target must read as once the child was killed at that point.
KILL_SCENARIOS = {
    "atomic_write:half-the-data": "A",  # half of B's 16 MiB in the temporary file
    "cache:rows-being-added": "A",  # 120 of B's rows in the staging folder
    "cache:before-meta": "A",  # B's generation renamed into place, meta.json not yet replaced
    "cache:after-meta": "B",  # meta.json names B, A's generation not yet removed
    "shards:second-shard": "A",  # B's first shard in place, half of its second written
    "shards:after-manifest": "B",  # the manifest names B, A's shards not yet removed
}

#: The child: writes A, then B up to its scenario's point, creates ``marker`` there and waits to be killed.
CHILD = textwrap.dedent("""
    import os
    import sys
    import time
    from pathlib import Path

    import numpy as np
    import scipy.sparse as sp

    scenario, work = sys.argv[1], Path(sys.argv[2])
    kind, point = scenario.split(":")
    out = work / "out"
    inputs = np.load(work.parent / "inputs.npz")


    def rows(version):
        indptr = inputs[version + "_indptr"]
        x = sp.csr_matrix((inputs[version + "_data"], inputs[version + "_indices"], indptr),
                          shape=(len(indptr) - 1, int(inputs["num_features"])))
        return x, inputs[version + "_labels"]


    def wait_to_be_killed(*args, **kwargs):
        (work / "marker").write_text(str(os.getpid()))
        time.sleep(300)
        os._exit(3)


    if kind == "atomic_write":
        from utils.processes import atomic_write
        with atomic_write(out / "file.bin") as tmp:
            tmp.write_bytes((work.parent / "A.bin").read_bytes())
        big = b"B" * (16 << 20)
        with atomic_write(out / "file.bin") as tmp, open(tmp, "wb") as handle:
            handle.write(big[: len(big) // 2])
            handle.flush()
            wait_to_be_killed()
    elif kind == "cache":
        import utils.feature_cache as feature_cache

        def write(version):
            x, y = rows(version)
            with feature_cache.CacheWriter(out, x.shape[1], num_buckets=2, seed=0) as writer:
                for start in range(0, len(y), 20):
                    writer.add(x[start:start + 20], y[start:start + 20])
                    if version == "B" and point == "rows-being-added" and start == 100:
                        wait_to_be_killed()

        write("A")
        real_write_json = feature_cache.write_json
        if point == "before-meta":
            feature_cache.write_json = wait_to_be_killed
        elif point == "after-meta":
            feature_cache.write_json = lambda *args, **kwargs: (real_write_json(*args, **kwargs), wait_to_be_killed())
        write("B")
    elif kind == "shards":
        import tensorflow as tf

        import utils.shards as shards
        shards.write_shards(*rows("A"), out, "train", 3)
        if point == "second-shard":
            real_record = tf.io.TFRecordWriter.write
            written = [0]

            def write_record(self, record):
                written[0] += 1
                if written[0] == 150:  # half of the second of three 100-row shards
                    self.flush()
                    wait_to_be_killed()
                real_record(self, record)

            tf.io.TFRecordWriter.write = write_record
        elif point == "after-manifest":
            real_write_json = shards.write_json
            shards.write_json = lambda *args, **kwargs: (real_write_json(*args, **kwargs), wait_to_be_killed())
        shards.write_shards(*rows("B"), out, "train", 3)
    sys.exit(f"{scenario}: the write ended before its kill point")
""")


@pytest.fixture(scope="module")
def killed_writes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run every kill scenario's child at once; return the folder each left when it was SIGKILLed."""
    root = tmp_path_factory.mktemp("killed")
    inputs: dict[str, np.ndarray] = {"num_features": np.asarray(NUM_FEATURES)}
    for version in "AB":
        x, y = version_rows(version)
        inputs |= {f"{version}_data": x.data, f"{version}_indices": x.indices, f"{version}_indptr": x.indptr,
                   f"{version}_labels": y}
    np.savez(root / "inputs.npz", **inputs)
    (root / "A.bin").write_bytes(BLOB_A)
    children: dict[str, tuple[Path, subprocess.Popen]] = {}
    try:
        for scenario in KILL_SCENARIOS:
            work = root / scenario.replace(":", "-")
            work.mkdir()
            with open(work / "child.log", "wb") as log:
                children[scenario] = work, subprocess.Popen(
                    [sys.executable, "-c", CHILD, scenario, str(work)], cwd=REPO_ROOT, stdout=log,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for scenario, (work, child) in children.items():
            try:
                status = kill_when_marked(child, work / "marker", timeout=240)
            except (RuntimeError, TimeoutError) as error:
                raise AssertionError(f"{scenario}: {error}\n{log_text(work / 'child.log')}") from error
            assert status == -signal.SIGKILL
    finally:
        for _, child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    return {scenario: work / "out" for scenario, (work, _) in children.items()}


def killed_copy(killed_writes: dict[str, Path], scenario: str, tmp_path: Path) -> Path:
    """A copy of what the child of ``scenario`` left, for one test to read and write on."""
    return Path(shutil.copytree(killed_writes[scenario], tmp_path / "out"))


@POSIX_ONLY
@pytest.mark.parametrize("scenario", KILL_SCENARIOS)
def test_write_killed_midway_reads_whole_and_the_next_write_succeeds(scenario: str, killed_writes: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    form = FORMATS[scenario.split(":")[0]]
    folder = killed_copy(killed_writes, scenario, tmp_path)
    # The kill came mid-write: part of the interrupted write is on disk besides the complete version.
    assert set(names(folder)) > set(form.clean(folder))
    assert_same(form.read(folder), form.expected(KILL_SCENARIOS[scenario]))
    form.write(folder, "C")
    assert_same(form.read(folder), form.expected("C"))


@POSIX_ONLY
@pytest.mark.parametrize("scenario", list(KILL_SCENARIOS))
def test_write_killed_midway_leaves_nothing_stale_after_the_next_write(scenario: str, killed_writes: dict[str, Path],
                                                                       tmp_path: Path) -> None:
    form = FORMATS[scenario.split(":")[0]]
    folder = killed_copy(killed_writes, scenario, tmp_path)
    form.write(folder, "C")
    assert names(folder) == form.clean(folder)
