"""Reading the corpora's files: strict UTF-8, the Zhang et al. CSV format, and IMDB's ``aclImdb`` folders.

Every reader here turns bad input into an error that names the file (and,
for a CSV file, the line), never into another exception or a silently
dropped row:

* :func:`decode_utf8` and :func:`read_document` decode bytes as strict UTF-8;
* :func:`iter_zhang_csv` and :func:`read_zhang_csv` read the CSV format of
  Zhang, Zhao & LeCun (2015), shared by AG News, DBPedia, Yelp and Amazon;
* :func:`aclimdb_files` lists IMDB's review files and :func:`read_aclimdb_split`
  reads them.

**The Zhang CSV format.** Each row is ``"class index","field",...``: a 1-based
class index followed by one text field (Yelp) or two (title and description:
AG News, DBPedia, Amazon). Every field is double-quoted, a quote inside a
field is doubled (``""``), there is no header, and a line break inside a field
is written as a backslash (``\\``). A row becomes ``(text, label)`` with the
fields joined by a line break, backslashes turned back into line breaks, and
the label shifted to start at 0. Rows are streamed in chunks, so a file far
larger than memory is read with memory bounded by the chunk size.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np


class DatasetError(RuntimeError):
    """A dataset could not be fetched or read; the message says what and where."""


class CSVFormatError(ValueError):
    """A row of a Zhang-format CSV file is malformed; the message names file and line."""


def decode_utf8(raw: bytes, where: str, error: type[Exception] = DatasetError) -> str:
    """Return ``raw`` decoded as strict UTF-8; raise ``error`` naming ``where``, the bytes and their offset."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{where}: bytes {raw[exc.start:exc.end]!r} at byte {exc.start} are not valid UTF-8") from None


def read_document(path: str | os.PathLike) -> str:
    """Return the text of one document file, decoded as strict UTF-8.

    Raises:
        DatasetError: the file is not valid UTF-8; the message names the file and the byte offset.
    """
    return decode_utf8(Path(path).read_bytes(), str(path))


def aclimdb_files(folder: Path, split: str) -> tuple[list[str], np.ndarray]:
    """List ``folder/split/{neg,pos}/*.txt`` in sorted order: label 0 = neg, 1 = pos.

    Returns:
        ``(paths, labels)``: file paths as strings and int64 labels.

    Raises:
        DatasetError: a class folder holds no ``.txt`` file.
    """
    paths: list[str] = []
    labels: list[int] = []
    for label, sub in enumerate(("neg", "pos")):
        names = sorted((folder / split / sub).glob("*.txt"))
        if not names:
            raise DatasetError(f"{folder / split / sub}: empty, no .txt review files")
        paths.extend(str(path) for path in names)
        labels.extend([label] * len(names))
    return paths, np.asarray(labels, dtype=np.int64)


def read_aclimdb_split(folder: Path, split: str) -> tuple[list[str], np.ndarray]:
    """Read every review of ``folder/split`` (see :func:`aclimdb_files`); return ``(texts, labels)``.

    Raises:
        DatasetError: a class folder holds no ``.txt`` file, or a file is not valid UTF-8.
    """
    paths, labels = aclimdb_files(folder, split)
    return [read_document(path) for path in paths], labels


def _decoded_lines(path: Path, handle: Iterable[bytes]) -> Iterator[str]:
    """Yield the lines of a binary file decoded as strict UTF-8, naming the line that is not."""
    for line_no, raw in enumerate(handle, start=1):
        yield decode_utf8(raw, f"{path}, line {line_no}", CSVFormatError)


# The largest class index accepted: labels are int64 arrays.
_MAX_CLASS_INDEX = int(np.iinfo(np.int64).max)


def _row_to_example(path: Path, line_no: int, row: list[str], num_classes: int | None) -> tuple[str, int]:
    """Turn one parsed row into ``(text, label)``; raise :class:`CSVFormatError` if malformed."""
    if len(row) < 2:
        raise CSVFormatError(f"{path}, line {line_no}: expected a class index and at least one text "
                             f"field, got {len(row)} field(s): {row!r:.120}")
    try:
        index = int(row[0])
    except ValueError:
        raise CSVFormatError(f"{path}, line {line_no}: class index {row[0]!r:.40} is not an integer") from None
    if index < 1 or index > _MAX_CLASS_INDEX or (num_classes is not None and index > num_classes):
        expected = f"1..{min(num_classes, _MAX_CLASS_INDEX)}" if num_classes is not None else f"1..{_MAX_CLASS_INDEX}"
        raise CSVFormatError(f"{path}, line {line_no}: class index {index} out of range {expected}")
    text = "\n".join(field.replace("\\", "\n") for field in row[1:])
    return text, index - 1


def iter_zhang_csv(path: str | os.PathLike, num_classes: int | None = None,
                   chunk_size: int = 10_000) -> Iterator[tuple[list[str], np.ndarray]]:
    """Stream a Zhang-format CSV file as chunks of ``(texts, labels)``.

    Arguments are checked when this is called, not at the first chunk.

    Args:
        path: the CSV file.
        num_classes: if given, class indices must lie in ``1..num_classes``.
        chunk_size: rows per chunk (the last chunk may be shorter).

    Returns:
        An iterator of ``(texts, labels)``, ``labels`` an int64 array of
        0-based classes.

    Raises:
        CSVFormatError (while iterating): the file is empty, a row has too few
            fields, a class index is not an integer or out of range, quoting is
            broken, or a line is not valid UTF-8; the message names the file
            and line.
        ValueError: ``chunk_size`` < 1 (raised at once).
        FileNotFoundError: ``path`` is not a file (raised at once).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return _chunks(path, num_classes, chunk_size)


def _chunks(path: Path, num_classes: int | None, chunk_size: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """The reading loop behind :func:`iter_zhang_csv` (arguments already checked)."""
    texts: list[str] = []
    labels: list[int] = []
    rows_read = 0
    with path.open("rb") as handle:
        reader = csv.reader(_decoded_lines(path, handle), strict=True)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise CSVFormatError(f"{path}, line {reader.line_num}: {exc}") from None
            text, label = _row_to_example(path, reader.line_num, row, num_classes)
            texts.append(text)
            labels.append(label)
            rows_read += 1
            if len(texts) == chunk_size:
                yield texts, np.asarray(labels, dtype=np.int64)
                texts, labels = [], []
    if rows_read == 0:
        raise CSVFormatError(f"{path}: file is empty (no rows)")
    if texts:
        yield texts, np.asarray(labels, dtype=np.int64)


def read_zhang_csv(path: str | os.PathLike, num_classes: int | None = None) -> tuple[list[str], np.ndarray]:
    """Read a whole Zhang-format CSV file; return ``(texts, labels)`` (see :func:`iter_zhang_csv`)."""
    texts: list[str] = []
    labels: list[np.ndarray] = []
    for chunk_texts, chunk_labels in iter_zhang_csv(path, num_classes):
        texts.extend(chunk_texts)
        labels.append(chunk_labels)
    return texts, np.concatenate(labels)
