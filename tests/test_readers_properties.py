"""Property-based tests (hypothesis) of the readers in utils.readers.

The requirement verified: any bytes in a CSV or document file yield rows or an error naming file and line,
never another exception and never a silently dropped row. Properties:

* ``iter_zhang_csv`` on arbitrary bytes, for several chunk sizes and with or without ``num_classes``, either
  yields well-formed chunks or raises ``CSVFormatError`` naming the file (and ``line <n>`` unless the file is
  empty), the same outcome for every chunk size;
* rows written with Python's ``csv`` writer (``QUOTE_ALL``) read back one for one: same count, labels equal to
  index - 1, texts equal to the fields joined by line breaks with backslashes turned into line breaks;
* a valid file with bytes inserted, replaced or deleted reads exactly as a model of the format says: the rows
  of a strict parse by Python's ``csv`` module of the decoded text, or an error at the line the model names;
* ``read_document`` returns the exact text of valid UTF-8 and otherwise raises ``DatasetError`` naming the
  file and byte offset;
* ``read_aclimdb_split`` on generated ``neg``/``pos`` folders returns every review in sorted order with labels
  0/1, or raises ``DatasetError`` naming the empty folder or the first file that is not UTF-8.

Each example writes its files to a fresh temporary directory.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.readers import (
    CSVFormatError,
    DatasetError,
    aclimdb_files,
    decode_utf8,
    iter_zhang_csv,
    read_aclimdb_split,
    read_document,
    read_zhang_csv,
)

CHUNK_SIZES = (1, 7, 10_000)
INT64_MAX = int(np.iinfo(np.int64).max)

# Pieces that make byte strings look like (broken) Zhang CSV rows far more often than uniform random bytes do.
CSV_PIECES = [b'"', b'""', b",", b"\n", b"\r", b"\r\n", b"\\", b" ", b"\x00", b"0", b"1", b"2", b"3", b"-1", b"+1",
              b"10", b"99999999999999999999", b"9223372036854775808", b"x", b"abc", b"\xc3\xa9", b"\xe2\x82\xac",
              b"\xff", b"\xc3", b"\xed\xa0\x80", b'"1","a"\n', b'"2","b","c"\n', b'"1",', b'"3","q""uote"\n',
              b'"99999999999999999999","a"\n']

csv_like_bytes = st.lists(st.sampled_from(CSV_PIECES), max_size=40).map(b"".join)
any_bytes = st.one_of(st.binary(max_size=200), csv_like_bytes, st.text(max_size=100).map(str.encode))

# Text of one field as the format writes it: any character but a raw line break (the format writes a line
# break as a backslash), so quotes, commas, backslashes, NULs and non-ASCII are all in play.
field_text = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\n\r"), max_size=30)
row_strategy = st.tuples(st.integers(1, 5), st.lists(field_text, min_size=1, max_size=3))
rows_strategy = st.lists(row_strategy, min_size=1, max_size=20)

LINE_RE = re.compile(r", line (\d+): ")


class _UndecodableLine(Exception):
    """Raised by the model's line source at the first physical line that is not UTF-8."""

    def __init__(self, line_no: int) -> None:
        super().__init__(line_no)
        self.line_no = line_no


def csv_bytes(rows: list[tuple[int, list[str]]]) -> bytes:
    """Write rows as Zhang CSV with Python's csv writer: every field quoted, lines ended by '\\n'."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for index, fields in rows:
        writer.writerow([str(index), *fields])
    return buffer.getvalue().encode("utf-8")


def expected_text(fields: list[str]) -> str:
    """The text the format defines for a row's fields."""
    return "\n".join(field.replace("\\", "\n") for field in fields)


def write_file(directory: str, content: bytes, name: str = "data.csv") -> Path:
    """Write ``content`` to ``directory/name`` and return the path."""
    path = Path(directory) / name
    path.write_bytes(content)
    return path


def read_all(path: Path, num_classes: int | None, chunk_size: int) -> tuple[list[str], list[int]] | CSVFormatError:
    """Iterate ``iter_zhang_csv`` fully; return its rows or its CSVFormatError, failing on any other exception.

    Also checks the shape of every chunk: all but the last hold exactly ``chunk_size`` rows, none is empty,
    texts are strings and labels an int64 array of the same length.
    """
    texts: list[str] = []
    labels: list[int] = []
    sizes: list[int] = []
    try:
        for chunk_texts, chunk_labels in iter_zhang_csv(path, num_classes=num_classes, chunk_size=chunk_size):
            assert isinstance(chunk_labels, np.ndarray) and chunk_labels.dtype == np.int64
            assert len(chunk_texts) == len(chunk_labels) > 0
            assert all(isinstance(text, str) for text in chunk_texts)
            sizes.append(len(chunk_texts))
            texts.extend(chunk_texts)
            labels.extend(chunk_labels.tolist())
    except CSVFormatError as exc:
        return exc
    except Exception as exc:  # any other type is the failure looked for
        pytest.fail(f"iter_zhang_csv raised {type(exc).__name__} instead of CSVFormatError: {exc}")
    assert all(size == chunk_size for size in sizes[:-1]) and sizes[-1] <= chunk_size
    return texts, labels


def error_line(exc: CSVFormatError, path: Path) -> int | None:
    """Check that the message names ``path``; return its line number, or None for the empty-file error."""
    message = str(exc)
    assert message.startswith(f"{path}"), message
    if message == f"{path}: file is empty (no rows)":
        return None
    match = LINE_RE.match(message, len(str(path)))
    assert match is not None, f"error does not name a line: {message}"
    return int(match.group(1))


def model(raw: bytes, num_classes: int | None) -> tuple[list[str], list[int]] | int | None:
    """What the format says ``raw`` reads as: ``(texts, labels)``, the line of the first error, or None if empty.

    Rows come from a strict parse by Python's csv module of the text, split into lines at '\\n' only (as
    the file's bytes are); a line that is not UTF-8 is an error at that line when the parse reaches it.
    """
    physical = raw.split(b"\n")
    lines = [line + b"\n" for line in physical[:-1]] + ([physical[-1]] if physical[-1] else [])

    def decoded() -> Iterator[str]:
        for line_no, line in enumerate(lines, start=1):
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError:
                raise _UndecodableLine(line_no) from None

    reader = csv.reader(decoded(), strict=True)
    texts: list[str] = []
    labels: list[int] = []
    try:
        for row in reader:
            if len(row) < 2 or not _is_int(row[0]):
                return reader.line_num
            index = int(row[0])
            if not 1 <= index <= min(num_classes or INT64_MAX, INT64_MAX):
                return reader.line_num
            texts.append(expected_text(row[1:]))
            labels.append(index - 1)
    except csv.Error:
        return reader.line_num
    except _UndecodableLine as exc:
        return exc.line_no
    return (texts, labels) if texts else None


def _is_int(text: str) -> bool:
    """Whether ``int(text)`` accepts ``text``."""
    try:
        int(text)
    except ValueError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(raw=any_bytes, num_classes=st.one_of(st.none(), st.integers(1, 5)))
def test_any_bytes_yield_chunks_or_csv_format_error_naming_file_and_line(raw: bytes, num_classes: int | None) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = write_file(directory, raw)
        outcomes = [read_all(path, num_classes, chunk_size) for chunk_size in CHUNK_SIZES]
        first = outcomes[0]
        if isinstance(first, CSVFormatError):
            line = error_line(first, path)
            if line is None:
                assert raw == b"", f"'file is empty' for a file of {len(raw)} bytes"
            else:
                assert 1 <= line <= raw.count(b"\n") + 1
            assert all(isinstance(other, CSVFormatError) and str(other) == str(first) for other in outcomes[1:])
        else:
            assert len(first[0]) >= 1
            assert all(other == first for other in outcomes[1:])
            if num_classes is not None:
                assert all(0 <= label < num_classes for label in first[1])


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy)
def test_rows_written_by_csv_module_read_back_one_for_one_for_every_chunk_size(
        rows: list[tuple[int, list[str]]]) -> None:
    expected = ([expected_text(fields) for _, fields in rows], [index - 1 for index, _ in rows])
    with tempfile.TemporaryDirectory() as directory:
        path = write_file(directory, csv_bytes(rows))
        for num_classes in (None, 5):
            for chunk_size in CHUNK_SIZES:
                assert read_all(path, num_classes, chunk_size) == expected
        texts, labels = read_zhang_csv(path, num_classes=5)
        assert (texts, labels.tolist()) == expected


@settings(max_examples=200, deadline=None)
@given(before=rows_strategy,
       index=st.one_of(st.integers(-3, 8), st.integers(INT64_MAX - 2, INT64_MAX + 3), st.integers(-(2**70), 2**70)),
       after=rows_strategy,
       num_classes=st.one_of(st.none(), st.integers(5, 10), st.integers(INT64_MAX - 1, 2**70)))
def test_any_integer_class_index_gives_its_label_or_out_of_range_error_at_its_line(
        before: list[tuple[int, list[str]]], index: int, after: list[tuple[int, list[str]]],
        num_classes: int | None) -> None:
    rows = [*before, (index, ["text"]), *after]
    with tempfile.TemporaryDirectory() as directory:
        path = write_file(directory, csv_bytes(rows))
        outcome = read_all(path, num_classes, chunk_size=7)
        if 1 <= index <= min(num_classes or INT64_MAX, INT64_MAX):
            assert not isinstance(outcome, CSVFormatError), str(outcome)
            assert outcome[1] == [i - 1 for i, _ in rows]
        else:
            assert isinstance(outcome, CSVFormatError) and "out of range" in str(outcome)
            assert error_line(outcome, path) == len(before) + 1


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy, data=st.data())
def test_any_index_above_num_classes_is_an_error_at_its_line(rows: list[tuple[int, list[str]]],
                                                             data: st.DataObject) -> None:
    num_classes = data.draw(st.integers(1, 5), label="num_classes")
    with tempfile.TemporaryDirectory() as directory:
        path = write_file(directory, csv_bytes(rows))
        outcome = read_all(path, num_classes, chunk_size=7)
        bad = [line for line, (index, _) in enumerate(rows, start=1) if index > num_classes]
        if bad:
            assert isinstance(outcome, CSVFormatError) and "out of range" in str(outcome)
            assert error_line(outcome, path) == bad[0]
        else:
            assert not isinstance(outcome, CSVFormatError), str(outcome)
            assert len(outcome[0]) == len(rows)


# (kind, piece): insert the piece, overwrite as many bytes with it, or delete as many bytes as it holds.
corruption = st.tuples(st.sampled_from(["insert", "replace", "delete"]),
                       st.one_of(st.binary(min_size=1, max_size=4),
                                 st.lists(st.sampled_from(CSV_PIECES), min_size=1, max_size=3).map(b"".join)))


@settings(max_examples=300, deadline=None)
@given(rows=rows_strategy, edits=st.lists(st.tuples(corruption, st.floats(0, 1)), min_size=1, max_size=3),
       num_classes=st.one_of(st.none(), st.just(5), st.integers(1, 4)))
def test_corrupted_file_reads_as_strict_csv_parse_says_or_errors_at_its_line(
        rows: list[tuple[int, list[str]]], edits: list[tuple[tuple[str, bytes], float]],
        num_classes: int | None) -> None:
    raw = csv_bytes(rows)
    for (kind, piece), where in edits:
        at = int(where * len(raw))
        if kind == "insert":
            raw = raw[:at] + piece + raw[at:]
        elif kind == "replace":
            raw = raw[:at] + piece + raw[at + len(piece):]
        else:
            raw = raw[:at] + raw[at + len(piece):]
    expected = model(raw, num_classes)
    with tempfile.TemporaryDirectory() as directory:
        path = write_file(directory, raw)
        for chunk_size in CHUNK_SIZES:
            outcome = read_all(path, num_classes, chunk_size)
            if isinstance(outcome, CSVFormatError):
                assert not isinstance(expected, tuple), f"rejected a file the model reads: {outcome}"
                assert error_line(outcome, path) == expected
            else:
                assert outcome == expected, "rows differ from a strict parse by the csv module"


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=100), st.text(max_size=50).map(str.encode),
                     st.tuples(st.text(max_size=20), st.binary(min_size=1, max_size=3), st.text(max_size=20))
                     .map(lambda parts: parts[0].encode() + parts[1] + parts[2].encode())))
def test_read_document_returns_exact_text_or_dataset_error_naming_file_and_byte(raw: bytes) -> None:
    try:
        text: str | None = raw.decode("utf-8")
        offset = -1
    except UnicodeDecodeError as exc:
        text, offset = None, exc.start
    with tempfile.TemporaryDirectory() as directory:
        path = write_file(directory, raw, "review.txt")
        try:
            result = read_document(path)
        except DatasetError as exc:
            assert text is None, f"rejected valid UTF-8: {exc}"
            assert str(exc).startswith(f"{path}: ") and f" at byte {offset} are not valid UTF-8" in str(exc)
        except Exception as exc:  # any other type is the failure looked for
            pytest.fail(f"read_document raised {type(exc).__name__} instead of DatasetError: {exc}")
        else:
            assert text is not None and result == text
    with pytest.raises(CSVFormatError) if text is None else contextlib.nullcontext():
        assert decode_utf8(raw, "somewhere", CSVFormatError) == text


review_names = st.lists(st.text(alphabet="abcXYZ019_-.", min_size=1, max_size=6), max_size=5, unique=True)
review_bytes = st.one_of(st.text(max_size=30).map(str.encode), st.binary(max_size=20))


@settings(max_examples=100, deadline=None)
@given(neg=st.dictionaries(st.text(alphabet="abcXYZ019_-", min_size=1, max_size=6), review_bytes, max_size=5),
       pos=st.dictionaries(st.text(alphabet="abcXYZ019_-", min_size=1, max_size=6), review_bytes, max_size=5),
       others=review_names)
def test_read_aclimdb_split_reads_all_reviews_in_sorted_order_or_names_offending_path(
        neg: dict[str, bytes], pos: dict[str, bytes], others: list[str]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        for sub, files in (("neg", neg), ("pos", pos)):
            (folder / "train" / sub).mkdir(parents=True)
            for name, content in files.items():
                write_file(str(folder / "train" / sub), content, f"{name}.txt")
            for name in others:  # not reviews: must be ignored
                write_file(str(folder / "train" / sub), b"\xff not a review", f"{name}.md")
        ordered = [(str(folder / "train" / "neg" / f"{name}.txt"), neg[name], 0) for name in _sorted_names(neg)]
        ordered += [(str(folder / "train" / "pos" / f"{name}.txt"), pos[name], 1) for name in _sorted_names(pos)]
        invalid = [path for path, content, _ in ordered if not _is_utf8(content)]
        try:
            texts, labels = read_aclimdb_split(folder, "train")
        except DatasetError as exc:
            message = str(exc)
            if not neg:
                assert message == f"{folder / 'train' / 'neg'}: empty, no .txt review files"
            elif not pos:
                assert message == f"{folder / 'train' / 'pos'}: empty, no .txt review files"
            else:
                assert invalid and message.startswith(f"{invalid[0]}: ") and " at byte " in message, message
            return
        except Exception as exc:  # any other type is the failure looked for
            pytest.fail(f"read_aclimdb_split raised {type(exc).__name__} instead of DatasetError: {exc}")
        assert neg and pos and not invalid
        assert texts == [content.decode("utf-8") for _, content, _ in ordered]
        assert labels.dtype == np.int64 and labels.tolist() == [label for _, _, label in ordered]
        paths, listed_labels = aclimdb_files(folder, "train")
        assert paths == [path for path, _, _ in ordered]
        assert listed_labels.tolist() == labels.tolist()


def _is_utf8(content: bytes) -> bool:
    """Whether ``content`` is valid UTF-8."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _sorted_names(files: dict[str, bytes]) -> list[str]:
    """The review names in the order of their file names (``name.txt``), the order the reader must keep."""
    return sorted(files, key=lambda name: f"{name}.txt")
