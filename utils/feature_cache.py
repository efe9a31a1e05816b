"""Sparse feature rows cached on disk in randomly assigned buckets, read back one bucket at a time.

Tokenizing is the slow part of the n-gram pipeline, and training reads every
document once per epoch. :class:`CacheWriter` writes each document's sparse
row (e.g. its hashed n-gram counts) to disk **once**, during the pass that
tokenizes it; every epoch then reads the rows back from disk, one bucket at a
time (:meth:`FeatureCache.batches`).

Each row goes to one of ``num_buckets`` bucket files chosen at random (a
seeded random number per row). That makes every bucket a random sample of the
whole file, wherever a row sat in it: a file sorted by class (IMDB's folders
are neg then pos; DBPedia's CSV is sorted by class) still gives mixed batches,
although only one bucket is in memory at a time. This is the first half of an
*external shuffle*; the second half is shuffling the rows of a bucket once it
is loaded. Memory is bounded by the bucket size, ``num_rows / num_buckets``
rows: choose ``num_buckets`` from the number of rows you expect
(:func:`buckets_for`).

A bucket file is a sequence of pieces, each piece four ``.npy`` records
appended one after the other (CSR ``data``, ``indices``, ``indptr``, and the
labels).

**Written whole, or not at all.** A cache folder holds ``meta.json`` and one
sub-folder per *generation* of bucket files. A new cache is written into a
staging folder, renamed to a new generation when complete, and only then does
``meta.json``, replaced in one atomic rename (:func:`utils.processes.write_json`),
point at it; the previous generation is deleted last. A write that fails or is
killed at any moment therefore leaves the previous cache readable and
complete (or no cache at all, if there was none), never a mix of the two.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from utils.batching import Batch
from utils.processes import fsync_path, remove_stale_staging, staging_folder, write_json
from utils.sparse import sorted_csr

META_FILE = "meta.json"


def buckets_for(num_rows: int, rows_per_bucket: int) -> int:
    """Return the number of buckets that keeps each near ``rows_per_bucket`` rows (at least 1)."""
    if rows_per_bucket < 1:
        raise ValueError(f"rows_per_bucket must be >= 1, got {rows_per_bucket}")
    return max(1, math.ceil(num_rows / rows_per_bucket))


def _bucket_name(index: int) -> str:
    """File name of bucket ``index``."""
    return f"bucket-{index:05d}.npy"


class CacheWriter:
    """Context manager that writes ``(rows, labels)`` chunks into a :class:`FeatureCache` at ``directory``.

    Use it as::

        with CacheWriter(directory, num_features, num_buckets=16, seed=0) as writer:
            for rows, labels in chunks:
                writer.add(rows, labels)
        cache = writer.cache

    An existing cache at ``directory`` is replaced only once the new one is
    complete; if the block raises, the staging folder is removed and
    ``directory`` is left as it was.

    Args:
        directory: where the cache ends up.
        num_features: number of columns of every row.
        num_buckets: number of bucket files (>= 1).
        seed: seed of the random assignment of rows to buckets.
    """

    def __init__(self, directory: str | os.PathLike, num_features: int, num_buckets: int = 1, seed: int = 0) -> None:
        if num_buckets < 1:
            raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
        self.directory = Path(directory)
        self.num_features = num_features
        self.num_buckets = num_buckets
        self.bucket_rows = [0] * num_buckets
        self._rng = np.random.default_rng(seed)
        self._staging: Path | None = None
        self.cache: FeatureCache | None = None

    def __enter__(self) -> CacheWriter:
        """Create the staging folder inside the cache folder."""
        self._staging = staging_folder(self.directory, "cache")
        return self

    def add(self, rows: sp.spmatrix, labels: np.ndarray) -> None:
        """Append each row (and its label) to a randomly chosen bucket.

        Raises:
            ValueError: wrong number of columns, or rows and labels of different lengths.
        """
        if self._staging is None:
            raise RuntimeError("CacheWriter.add called outside its with block")
        rows = sp.csr_matrix(rows)
        labels = np.asarray(labels)
        if rows.shape[1] != self.num_features:
            raise ValueError(f"rows have {rows.shape[1]} columns, the cache {self.num_features}")
        if rows.shape[0] != len(labels):
            raise ValueError(f"{rows.shape[0]} rows but {len(labels)} labels")
        buckets = self._rng.integers(self.num_buckets, size=len(labels))
        for bucket in np.unique(buckets):
            picked = np.flatnonzero(buckets == bucket)
            piece = rows[picked]
            with (self._staging / _bucket_name(int(bucket))).open("ab") as handle:
                for array in (piece.data, piece.indices, piece.indptr, labels[picked]):
                    np.save(handle, array, allow_pickle=False)
            self.bucket_rows[int(bucket)] += len(picked)

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        """Make the staging folder the cache's new generation if the block succeeded; remove it otherwise.

        Order matters for a write interrupted at any point: the new generation
        is complete on disk before ``meta.json`` names it, and the old one is
        deleted only after. Leftovers of earlier interrupted writes (staging
        folders, generations no ``meta.json`` names) are deleted last.
        """
        staging, self._staging = self._staging, None
        if exc_type is not None:
            shutil.rmtree(staging, ignore_errors=True)
            return
        generation = self.directory / f"generation-{uuid.uuid4().hex[:12]}"
        try:
            for bucket in staging.iterdir():  # on disk before meta.json can name them
                fsync_path(bucket)
            os.replace(staging, generation)
            fsync_path(self.directory)
            write_json(self.directory / META_FILE, {"generation": generation.name, "num_features": self.num_features,
                                                    "num_buckets": self.num_buckets, "bucket_rows": self.bucket_rows})
        except BaseException:  # not committed: meta.json still names the previous generation
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(generation, ignore_errors=True)
            raise
        for path in self.directory.glob("generation-*"):
            if path != generation:
                shutil.rmtree(path, ignore_errors=True)
        remove_stale_staging(self.directory)
        self.cache = FeatureCache(self.directory)


class FeatureCache:
    """A cache written by :class:`CacheWriter`, read one bucket at a time.

    Args:
        directory: the cache folder.

    Raises:
        FileNotFoundError: ``directory`` holds no complete cache.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        meta_path = self.directory / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.directory}: no complete feature cache ({META_FILE} missing)")
        meta = json.loads(meta_path.read_text())
        self.generation = self.directory / meta["generation"]
        self.num_features: int = meta["num_features"]
        self.num_buckets: int = meta["num_buckets"]
        self.bucket_rows: list[int] = meta["bucket_rows"]

    @property
    def num_rows(self) -> int:
        """Rows in the cache."""
        return sum(self.bucket_rows)

    @property
    def nbytes(self) -> int:
        """Bytes of the cache's bucket files on disk."""
        return sum(path.stat().st_size for path in self.generation.iterdir())

    def read_bucket(self, index: int) -> Batch:
        """Return bucket ``index`` as ``(rows, labels)``: CSR in the order written, and its labels."""
        path = self.generation / _bucket_name(index)
        if not path.exists():
            return sp.csr_matrix((0, self.num_features), dtype=np.float32), np.zeros(0, dtype=np.int64)
        pieces, labels = [], []
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            while handle.tell() < size:
                data, indices, indptr, piece_labels = (np.load(handle, allow_pickle=False) for _ in range(4))
                pieces.append(sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, self.num_features)))
                labels.append(piece_labels)
        return sp.vstack(pieces, format="csr"), np.concatenate(labels)

    def batches(self, batch_size: int, *, transform: Callable[[sp.csr_matrix], sp.csr_matrix] | None = None,
                shuffle: bool = True, rng: np.random.Generator | None = None) -> Iterator[Batch]:
        """Yield one pass over the cache as ``(x_batch, y_batch)``, every row exactly once.

        Buckets are read in a random order (``shuffle``) or in order; each
        bucket is transformed as a whole, its rows shuffled, and cut into
        batches. The rows left over at the end of a bucket are carried into
        the next, so every batch but the last has ``batch_size`` rows. At most
        one bucket and one batch of carried rows are in memory.

        Args:
            batch_size: rows per batch (>= 1).
            transform: applied to each bucket's rows before batching (e.g.
                :meth:`utils.hashed_tfidf.HashedTfidf.transform_counts`).
            shuffle: shuffle bucket order and rows; otherwise the order written.
            rng: random generator of the shuffling (keep one across epochs for a new order every epoch).

        Returns:
            An iterator of CSR batches with sorted indices, and int64 label arrays.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        rng = rng if rng is not None else np.random.default_rng()
        return self._batches(batch_size, transform, shuffle, rng)

    def _batches(self, batch_size: int, transform: Callable[[sp.csr_matrix], sp.csr_matrix] | None,
                 shuffle: bool, rng: np.random.Generator) -> Iterator[Batch]:
        """The loop behind :meth:`batches` (arguments checked)."""
        order = rng.permutation(self.num_buckets) if shuffle else range(self.num_buckets)
        carry: Batch | None = None
        for index in order:
            x, y = self.read_bucket(int(index))
            if len(y) == 0:
                continue
            if transform is not None:
                x = transform(x)
            if shuffle:
                permutation = rng.permutation(len(y))
                x, y = x[permutation], y[permutation]
            if carry is not None:
                x, y = sp.vstack([carry[0], x], format="csr"), np.concatenate([carry[1], y])
            full = len(y) - len(y) % batch_size
            for start in range(0, full, batch_size):
                yield sorted_csr(x[start:start + batch_size]), y[start:start + batch_size]
            carry = (x[full:], y[full:]) if full < len(y) else None
        if carry is not None:
            yield sorted_csr(carry[0]), carry[1]

    def epochs(self, batch_size: int, *, transform: Callable[[sp.csr_matrix], sp.csr_matrix] | None = None,
               shuffle: bool = True, seed: int | None = 0) -> Callable[[], Iterator[Batch]]:
        """Return a function that starts a new pass each time it is called, in a new seeded order.

        This is what ``tf.data.Dataset.from_generator`` wants: it calls the
        function again at the start of every epoch.
        """
        rng = np.random.default_rng(seed)
        return lambda: self.batches(batch_size, transform=transform, shuffle=shuffle, rng=rng)
