"""Reading a dataset from disk in chunks, so that the corpus itself is never held in memory.

Chapters 01–04 start from :func:`utils.datasets.load`, which reads every text
into a Python list. This module reads the same splits lazily instead: a
*document stream* knows where its documents are on disk and yields them in
chunks of ``(texts, labels)``, one chunk at a time, every time it is iterated.

* :class:`DocumentFiles` reads documents stored one per file (IMDB's
  ``aclImdb/`` layout). Only the list of file names and labels is in memory.
* :class:`ZhangCsvRows` reads a CSV file of Zhang, Zhao & LeCun (AG News,
  DBPedia, Yelp, Amazon) row by row with :func:`utils.readers.iter_zhang_csv`,
  optionally keeping only the training or the validation part of it.

:func:`open_streams` returns the train / validation / test streams of a
dataset of :data:`utils.datasets.REGISTRY`. For IMDB the validation split is
exactly the one :func:`utils.datasets.load` makes (same seed, same files). A
CSV file cannot be split that way without reading it first, so each row goes
to validation with probability ``validation_fraction``, decided by a seeded
random number per row: the same rows on every pass, whatever the chunk size.

Bad input gets an error naming the file (and the line, for a CSV file): a
document that is not valid UTF-8 raises :class:`utils.readers.DatasetError`,
a malformed CSV row :class:`utils.readers.CSVFormatError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils import REPO_ROOT, datasets
from utils.readers import DatasetError, aclimdb_files, iter_zhang_csv, read_document

Chunk = tuple[list[str], np.ndarray]

#: Default number of documents per chunk.
CHUNK_SIZE = 1000


def _check_chunk_size(chunk_size: int) -> None:
    """Raise ``ValueError`` unless ``chunk_size`` >= 1."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


@dataclass(frozen=True)
class DocumentFiles:
    """Documents stored one per file, read lazily in the order given.

    Attributes:
        paths: one file per document.
        labels: one integer label per file.
        num_classes: number of classes.
    """

    paths: tuple[str, ...]
    labels: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.labels):
            raise ValueError(f"{len(self.paths)} paths but {len(self.labels)} labels")

    def __len__(self) -> int:
        """Number of documents."""
        return len(self.paths)

    def head(self, limit: int) -> DocumentFiles:
        """Return the stream of the first ``limit`` documents."""
        return DocumentFiles(self.paths[:limit], self.labels[:limit], self.num_classes)

    def sample(self, size: int, seed: int = 0) -> DocumentFiles:
        """Return the stream of ``size`` documents drawn at random without replacement (seeded), in random order."""
        if not 0 <= size <= len(self):
            raise ValueError(f"size must be in 0..{len(self)}, got {size}")
        index = np.random.default_rng(seed).permutation(len(self))[:size]
        return DocumentFiles(tuple(self.paths[i] for i in index), self.labels[index], self.num_classes)

    def chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[Chunk]:
        """Yield ``(texts, labels)`` of ``chunk_size`` documents at a time (the last chunk may be shorter).

        Raises:
            ValueError: ``chunk_size`` < 1 (at once).
            DatasetError (while iterating): a file is not valid UTF-8.
        """
        _check_chunk_size(chunk_size)
        return self._chunks(chunk_size)

    def _chunks(self, chunk_size: int) -> Iterator[Chunk]:
        """The reading loop behind :meth:`chunks`."""
        for start in range(0, len(self.paths), chunk_size):
            texts = [read_document(path) for path in self.paths[start:start + chunk_size]]
            yield texts, self.labels[start:start + chunk_size]


#: Which rows of a CSV file a :class:`ZhangCsvRows` keeps.
PARTS = ("all", "train", "validation")


@dataclass(frozen=True)
class ZhangCsvRows:
    """The rows of a Zhang-format CSV file, read lazily in file order.

    With ``part="train"`` or ``"validation"``, each row is sent to validation
    with probability ``validation_fraction``, by a seeded random number drawn
    for every row in file order; the two parts are disjoint, cover the file,
    and are the same on every pass.

    Attributes:
        path: the CSV file.
        num_classes: class indices must lie in ``1..num_classes``.
        part: ``"all"``, ``"train"`` or ``"validation"``.
        validation_fraction: share of rows in the validation part.
        seed: seed of the split.
        limit: keep at most this many rows of the part (``None``: all).
    """

    path: Path
    num_classes: int
    part: str = "all"
    validation_fraction: float = 0.2
    seed: int = datasets.SPLIT_SEED
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {self.part!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")

    def head(self, limit: int) -> ZhangCsvRows:
        """Return the stream of the first ``limit`` rows of this part."""
        return ZhangCsvRows(self.path, self.num_classes, self.part, self.validation_fraction, self.seed, limit)

    def chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[Chunk]:
        """Yield ``(texts, labels)`` of up to ``chunk_size`` rows at a time, in file order.

        With a ``part`` other than ``"all"``, a chunk may be shorter than
        ``chunk_size`` (rows of the other part are left out of it).

        Raises:
            ValueError: ``chunk_size`` < 1 (at once).
            FileNotFoundError: the file does not exist (at once).
            CSVFormatError (while iterating): a malformed row or invalid UTF-8,
                with the file and line in the message.
        """
        _check_chunk_size(chunk_size)
        rows = iter_zhang_csv(self.path, self.num_classes, chunk_size)
        return self._chunks(rows)

    def _chunks(self, rows: Iterator[Chunk]) -> Iterator[Chunk]:
        """Keep this part's rows of each chunk, up to ``limit``."""
        rng = np.random.default_rng(self.seed)
        left = self.limit if self.limit is not None else np.inf
        for texts, labels in rows:
            if left <= 0:
                return
            if self.part != "all":
                in_validation = rng.random(len(texts)) < self.validation_fraction
                keep = in_validation if self.part == "validation" else ~in_validation
                texts = [text for text, kept in zip(texts, keep, strict=True) if kept]
                labels = labels[keep]
            if len(texts) > left:
                texts, labels = texts[:int(left)], labels[:int(left)]
            left -= len(texts)
            if texts:
                yield texts, labels


DocumentStream = DocumentFiles | ZhangCsvRows


def documents(stream: DocumentStream, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[str, int]]:
    """Yield ``(text, label)`` one document at a time, read ``chunk_size`` at a time from disk."""
    for texts, labels in stream.chunks(chunk_size):
        yield from zip(texts, labels.tolist(), strict=True)


@dataclass(frozen=True)
class Streams:
    """The three splits of a dataset, as document streams.

    Attributes:
        name: the dataset's registry name.
        class_names: class names in label order.
        train, val, test: the streams of each split.
    """

    name: str
    class_names: tuple[str, ...]
    train: DocumentStream
    val: DocumentStream
    test: DocumentStream

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


def open_streams(name: str, data_dir: str | os.PathLike | None = None, *, validation_fraction: float = 0.2,
                 seed: int = datasets.SPLIT_SEED) -> Streams:
    """Fetch dataset ``name`` if needed and return its splits as document streams; nothing is read yet.

    Args:
        name: a key of :data:`utils.datasets.REGISTRY`.
        data_dir: cache folder; default :func:`utils.datasets.data_home`.
        validation_fraction: share of the training set held out for validation.
        seed: seed of the validation split.

    Returns:
        :class:`Streams`. For IMDB, ``train`` and ``val`` hold the same
        documents, in the same order, as :func:`utils.datasets.load`'s split.
    """
    spec = datasets.get_spec(name)
    folder = datasets.fetch(name, data_dir)
    num_classes = len(spec.class_names)
    if spec.layout == "aclimdb":
        paths, labels = aclimdb_files(folder, "train")
        tr_x, tr_y, va_x, va_y = datasets.split_train_validation(paths, labels, validation_fraction, seed)
        test_paths, test_labels = aclimdb_files(folder, "test")
        return Streams(spec.name, spec.class_names, DocumentFiles(tuple(tr_x), tr_y, num_classes),
                       DocumentFiles(tuple(va_x), va_y, num_classes),
                       DocumentFiles(tuple(test_paths), test_labels, num_classes))
    train_csv = folder / "train.csv"
    return Streams(
        spec.name, spec.class_names,
        ZhangCsvRows(train_csv, num_classes, "train", validation_fraction, seed),
        ZhangCsvRows(train_csv, num_classes, "validation", validation_fraction, seed),
        ZhangCsvRows(folder / "test.csv", num_classes),
    )


def find_split_csv(name: str, split: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Return the path of one CSV split of a Zhang-format dataset that is already on disk; download nothing.

    Looks first in a complete download (``<cache>/<name>/<folder>/<split>.csv``, as
    :func:`utils.datasets.fetch` leaves it), then for a lone copy of that file at
    ``<cache>/<name>_<split>/<split>.csv`` (where CI puts the AG News test file).

    Raises:
        DatasetError: neither exists; the message says how to get the file.
    """
    spec = datasets.get_spec(name)
    if spec.layout != "zhang_csv":
        raise ValueError(f"{name} is not a CSV dataset (layout {spec.layout!r})")
    home = datasets.data_home(data_dir)
    folder = home / spec.name / spec.folder
    lone = home / f"{spec.name}_{split}" / f"{split}.csv"
    for path in (folder / f"{split}.csv", lone):
        if path.is_file():
            return path
    raise DatasetError(f"no {split}.csv of {name} in {folder} or {lone}; "
                                f"run utils.datasets.fetch({name!r}) to download the dataset")


#: Committed excerpts of CSV splits (``data/samples/``, described in its README), used when the
#: split itself is neither on disk nor downloadable: ``(dataset, split) -> (file, rows)``.
SAMPLE_CSVS = {("ag_news", "test"): ("ag_news_test_head.csv", 300)}
SAMPLES_DIR = REPO_ROOT / "data" / "samples"


@dataclass(frozen=True)
class SplitCsv:
    """A CSV split found by :func:`split_csv_or_sample`.

    Attributes:
        path: the CSV file.
        is_sample: ``True`` when ``path`` is the committed excerpt, not the whole split.
        source: one line for the reader saying what the file is (no machine paths).
    """

    path: Path
    is_sample: bool
    source: str


def split_csv_or_sample(name: str, split: str, data_dir: str | os.PathLike | None = None, *,
                        download: bool = True) -> SplitCsv:
    """Return one CSV split of a Zhang-format dataset, downloading it if needed, else its committed excerpt.

    Tries, in order: the split on disk (:func:`find_split_csv`); a download of the
    whole dataset (:func:`utils.datasets.fetch`, when ``download``); the excerpt
    of :data:`SAMPLE_CSVS` in ``data/samples/``. A chapter prints ``source``, so
    that a learner without the dataset knows the figures come from the excerpt.

    Raises:
        DatasetError: the split is not on disk, cannot be downloaded, and has no
            committed excerpt; the message says why each step failed.
    """
    try:
        return SplitCsv(find_split_csv(name, split, data_dir), False, f"{name} {split}.csv: the whole split, on disk")
    except DatasetError as missing:
        reasons = [str(missing)]
    if download:
        try:
            folder = datasets.fetch(name, data_dir, progressbar=False)
            return SplitCsv(folder / f"{split}.csv", False, f"{name} {split}.csv: the whole split, downloaded")
        except DatasetError as failed:
            reasons.append(str(failed))
    if (name, split) not in SAMPLE_CSVS:
        raise DatasetError("; ".join(reasons) + f"; and no committed excerpt of {name} {split} in {SAMPLES_DIR}")
    file_name, rows = SAMPLE_CSVS[name, split]
    why = "could not be downloaded" if download else "was not downloaded (download=False)"
    return SplitCsv(SAMPLES_DIR / file_name, True,
                    f"{name} {split}.csv is not on disk and {why}: using the committed excerpt "
                    f"data/samples/{file_name}, its first {rows} rows (figures below are the excerpt's)")


def estimate_rows(stream: DocumentStream) -> int:
    """Return the number of documents of a stream, or an estimate for a CSV part, without parsing the file.

    A :class:`DocumentFiles` stream knows its length. For a :class:`ZhangCsvRows`
    stream the file's lines are counted (one row per line in this format) and
    scaled by the share of the part; ``limit`` caps the result. Use it to size
    buffers and buckets, not as an exact count.
    """
    if isinstance(stream, DocumentFiles):
        return len(stream)
    lines = 0
    with stream.path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    share = {"all": 1.0, "train": 1.0 - stream.validation_fraction, "validation": stream.validation_fraction}
    estimate = round(lines * share[stream.part])
    return min(estimate, stream.limit) if stream.limit is not None else estimate
