"""Sparse feature rows on disk as TFRecord shards, and a ``tf.data`` pipeline that reads them back.

A cluster does not share one Python process's memory: every worker has to
read the training data from storage, and each should read only its part.
The usual layout is a set of record files ("shards") plus a small manifest,
on storage every host can see (a network file system, a bucket).

:func:`write_shards` stores the rows of a CSR matrix (the tf-idf n-gram
vectors of :class:`utils.vectorize.NgramVectorizer`) and their labels as
``tf.train.Example`` records, one per row, holding only the non-zeros:
``indices`` (int64 column numbers, sorted), ``values`` (float32) and
``label`` (int64). Row ``i`` goes to shard ``i % num_shards``, so every shard
is a uniform sample of the rows even when they are sorted by label. The
manifest ``<name>.json`` records the feature width, the files and their row
counts. A new set of shards gets file names of its own (a random *generation*
token), and the manifest, which readers go by, is replaced in one atomic
rename only once every shard is complete; the previous set's files are
deleted after that. A write that fails or is killed at any moment leaves the
previous shards and manifest readable, never a mix of old and new rows.

:func:`make_dataset` reads shards back as a batched ``tf.data.Dataset`` of
``(x, y)``: it interleaves the files, shuffles, batches the serialized
records and parses a whole batch at once into a ``tf.SparseTensor`` of shape
``(batch, num_features)`` (or a dense batch). Its ``shard`` argument gives a
worker its own subset of the files.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from utils.processes import atomic_write, remove_stale_partials, write_json
from utils.sparse import sorted_csr

#: Version of the record layout, stored in every manifest.
FORMAT_VERSION = 1
#: Name of a shard file: ``<name>-<generation>-<k>-of-<num_shards>.tfrecord``.
SHARD_FILE = re.compile(r"(.+)-[0-9a-f]{8}-\d{5}-of-\d{5}\.tfrecord")


@dataclass(frozen=True)
class ShardManifest:
    """What :func:`write_shards` wrote: enough to build a reader without opening the files.

    Attributes:
        name: prefix of the files, e.g. ``"train"``.
        num_features: width of the feature vectors (the model's input width).
        num_rows: rows in all shards together.
        files: shard file names, relative to the manifest's folder.
        rows_per_file: rows in each shard, same order as ``files``.
        format_version: :data:`FORMAT_VERSION` of the writer.
    """

    name: str
    num_features: int
    num_rows: int
    files: tuple[str, ...]
    rows_per_file: tuple[int, ...]
    format_version: int = FORMAT_VERSION

    def paths(self, directory: str | os.PathLike) -> list[str]:
        """Return the shard paths inside ``directory``, as strings (what ``tf.data`` takes)."""
        return [str(Path(directory) / name) for name in self.files]


def _example(indices: np.ndarray, values: np.ndarray, label: int) -> bytes:
    """Serialize one sparse row and its label as a ``tf.train.Example``."""
    feature = {
        "indices": tf.train.Feature(int64_list=tf.train.Int64List(value=indices)),
        "values": tf.train.Feature(float_list=tf.train.FloatList(value=values)),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_shards(x: sp.spmatrix, y: np.ndarray, directory: str | os.PathLike, name: str,
                 num_shards: int) -> ShardManifest:
    """Write rows of ``x`` with labels ``y`` as ``num_shards`` TFRecord files plus a manifest.

    Files are ``<directory>/<name>-<generation>-<k>-of-<num_shards>.tfrecord``
    and the manifest ``<directory>/<name>.json``. Shards written before under
    the same ``name`` are replaced: the new manifest takes effect in one
    rename, then the old shard files are deleted.

    Args:
        x: samples, a scipy sparse matrix (read as float32 CSR with sorted indices), one row per sample.
        y: integer labels, one per row of ``x``.
        directory: folder to write into (created if missing).
        name: prefix of the files, letters, digits, ``_`` and ``-`` only.
        num_shards: number of files, between 1 and the number of rows.

    Returns:
        The :class:`ShardManifest` written.

    Raises:
        ValueError: ``x`` is not sparse, ``x`` and ``y`` differ in length, there are no rows,
            ``num_shards`` is out of range, ``name`` has other characters, or a label is not an integer.
    """
    if not sp.issparse(x):
        raise ValueError(f"x must be a scipy sparse matrix, got {type(x).__name__}")
    num_rows = x.shape[0]
    if len(y) != num_rows:
        raise ValueError(f"x has {num_rows} rows but y has {len(y)} labels")
    if num_rows == 0:
        raise ValueError("cannot write an empty matrix: x has 0 rows")
    if not 1 <= num_shards <= num_rows:
        raise ValueError(f"num_shards must be between 1 and the number of rows ({num_rows}), got {num_shards}")
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"name must be letters, digits, '_' or '-', got {name!r}")
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    x = sorted_csr(x)

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / f"{name}.json"
    generation = uuid.uuid4().hex[:8]
    files = tuple(f"{name}-{generation}-{k:05d}-of-{num_shards:05d}.tfrecord" for k in range(num_shards))
    written: list[Path] = []
    try:
        for k, file in enumerate(files):
            with atomic_write(directory / file) as tmp:
                with tf.io.TFRecordWriter(str(tmp)) as writer:
                    for row in range(k, num_rows, num_shards):
                        start, end = x.indptr[row], x.indptr[row + 1]
                        writer.write(_example(x.indices[start:end], x.data[start:end], int(y[row])))
            written.append(directory / file)
        manifest = ShardManifest(
            name=name, num_features=int(x.shape[1]), num_rows=int(num_rows), files=files,
            rows_per_file=tuple(len(range(k, num_rows, num_shards)) for k in range(num_shards)),
        )
        write_json(manifest_path, asdict(manifest))
    except BaseException:
        for path in written:  # this generation's shards: no manifest names them
            path.unlink(missing_ok=True)
        raise
    # Committed: every other set of shards of this name (the previous one, those of writes that were killed
    # or failed after their commit) and killed writes' temporary files can go.
    for path in directory.iterdir():
        match = SHARD_FILE.fullmatch(path.name)
        if match and match.group(1) == name and path.name not in files:
            path.unlink(missing_ok=True)
    remove_stale_partials(directory)
    return manifest


def read_manifest(directory: str | os.PathLike, name: str) -> ShardManifest:
    """Read ``<directory>/<name>.json`` written by :func:`write_shards`.

    Raises:
        FileNotFoundError: there is no such manifest, or a shard it lists is missing.
        ValueError: the manifest was written by another format version.
    """
    path = Path(directory) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no shard manifest (write the shards with write_shards first)")
    fields = json.loads(path.read_text())
    if fields.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {fields.get('format_version')}, this reader reads {FORMAT_VERSION}")
    manifest = ShardManifest(**{**fields, "files": tuple(fields["files"]),
                                "rows_per_file": tuple(fields["rows_per_file"])})
    missing = [p for p in manifest.paths(directory) if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} lists shards that do not exist: {', '.join(missing)}")
    return manifest


def parse_batch(serialized: tf.Tensor, num_features: int, sparse: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
    """Parse a batch of serialized records into ``(x, y)``.

    Args:
        serialized: a 1-D string tensor of records written by :func:`write_shards`.
        num_features: width of the feature vectors.
        sparse: return ``x`` as a ``tf.SparseTensor`` (indices sorted within each row);
            otherwise as a dense float32 tensor.

    Returns:
        ``x`` of shape ``(batch, num_features)`` and int64 labels ``y`` of shape ``(batch,)``.
    """
    features = tf.io.parse_example(serialized, {
        "indices": tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64),
        "values": tf.io.RaggedFeature(tf.float32, row_splits_dtype=tf.int64),
        "label": tf.io.FixedLenFeature([], tf.int64),
    })
    columns = features["indices"]
    # Rows in order, columns sorted within each row: the canonical order a SparseTensor needs.
    indices = tf.stack([columns.value_rowids(), columns.flat_values], axis=1)
    dense_shape = tf.stack([tf.shape(features["label"], out_type=tf.int64)[0], tf.constant(num_features, tf.int64)])
    x = tf.SparseTensor(indices, features["values"].flat_values, dense_shape)
    if not sparse:
        x = tf.sparse.to_dense(x)
    return x, features["label"]


def make_dataset(files: Sequence[str], num_features: int, batch_size: int, *, shuffle: bool = False,
                 seed: int | None = None, shuffle_buffer: int = 10_000, repeat: bool = False,
                 sparse: bool = True, shard: tuple[int, int] | None = None,
                 drop_remainder: bool = False) -> tf.data.Dataset:
    """Return a ``tf.data`` pipeline of ``(x, y)`` batches read from shard files.

    Files are read several at a time (``interleave``), records shuffled in a
    buffer, batched, and parsed a batch at a time (:func:`parse_batch`), with
    the next batches prepared while the model trains on this one
    (``prefetch``).

    Args:
        files: shard paths, e.g. ``manifest.paths(directory)``.
        num_features: width of the feature vectors (``manifest.num_features``).
        batch_size: records per batch, >= 1.
        shuffle: shuffle the file order and the records (in a buffer of
            ``shuffle_buffer`` records), anew every epoch; off for evaluation.
        seed: seed of both shuffles; the same seed gives the same batches.
        shuffle_buffer: records held in the shuffle buffer, >= 1.
        repeat: repeat the data forever (then ``model.fit`` needs ``steps_per_epoch``).
        sparse: ``x`` as ``tf.SparseTensor`` batches, otherwise dense.
        shard: ``(num_shards, index)``: keep only the files ``index``, ``index + num_shards``, ...
            (one worker's part); ``None`` reads all files.
        drop_remainder: drop the last batch if it is smaller than ``batch_size``.

    Returns:
        The dataset.

    Raises:
        ValueError: no files, ``batch_size`` or ``shuffle_buffer`` < 1, or ``shard`` leaves a worker without files.
    """
    if not files:
        raise ValueError("no shard files given")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if shuffle_buffer < 1:
        raise ValueError(f"shuffle_buffer must be >= 1, got {shuffle_buffer}")
    files = list(files)
    if shard is not None:
        num_shards, index = shard
        if not 0 <= index < num_shards:
            raise ValueError(f"shard index must be in [0, {num_shards}), got {index}")
        if num_shards > len(files):
            raise ValueError(f"{len(files)} files cannot be split between {num_shards} workers: "
                             "write at least one shard per worker")
        files = files[index::num_shards]
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 4),
                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(lambda records: parse_batch(records, num_features, sparse),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
