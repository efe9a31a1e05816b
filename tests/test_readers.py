"""Tests of utils.readers, the reader of Zhang, Zhao & LeCun's CSV format.

The format tests read the committed excerpt of AG News (data/samples/ag_news_test_head.csv, the first 300
rows of the real test split); the error tests write small synthetic files to tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from utils.readers import CSVFormatError, iter_zhang_csv, read_zhang_csv

FIRST_TEXT = (
    "Fears for T N pension after talks\n"
    "Unions representing workers at Turner   Newall say they are 'disappointed' after talks with stricken "
    "parent firm Federal Mogul."
)


def write(tmp_path: Path, content: bytes, name: str = "broken.csv") -> Path:
    """Write a synthetic CSV file and return its path."""
    path = tmp_path / name
    path.write_bytes(content)
    return path


def raw_lines(path: Path) -> list[str]:
    """The excerpt's physical lines (each of its rows is one line)."""
    return path.read_text(encoding="utf-8").splitlines()


def test_sample_has_300_rows_with_labels_0_to_3(ag_news_sample: Path) -> None:
    texts, labels = read_zhang_csv(ag_news_sample, num_classes=4)
    assert len(texts) == len(labels) == 300
    assert labels.dtype == np.int64
    assert set(labels.tolist()) == {0, 1, 2, 3}
    assert all(isinstance(t, str) and t for t in texts)


def test_first_row_label_and_text_exact(ag_news_sample: Path) -> None:
    assert raw_lines(ag_news_sample)[0].startswith('"3",')
    texts, labels = read_zhang_csv(ag_news_sample, num_classes=4)
    assert labels[0] == 2
    assert texts[0] == FIRST_TEXT


def test_backslash_becomes_line_break(ag_news_sample: Path) -> None:
    lines = raw_lines(ag_news_sample)
    assert "\\" in lines[1]
    texts, _ = read_zhang_csv(ag_news_sample)
    assert "A second\nteam of rocketeers" in texts[1]
    assert texts[1].count("\n") == lines[1].count("\\") + 1  # + the title/description separator
    assert not any("\\" in text for text in texts)


def test_doubled_quote_becomes_one_quote(ag_news_sample: Path) -> None:
    lines = raw_lines(ag_news_sample)
    assert '""phishing""' in lines[8]
    texts, _ = read_zhang_csv(ag_news_sample)
    assert texts[8] == ('E-mail scam targets police chief\n'
                        'Wiltshire Police warns about "phishing" after its fraud squad chief was targeted.')
    assert '"Music Manifesto"' in texts[5]
    assert '""' not in texts[5]


def test_iter_chunks_of_64_concatenate_to_whole_read(ag_news_sample: Path) -> None:
    chunks = list(iter_zhang_csv(ag_news_sample, num_classes=4, chunk_size=64))
    assert [len(t) for t, _ in chunks] == [64, 64, 64, 64, 44]
    assert [len(lab) for _, lab in chunks] == [64, 64, 64, 64, 44]
    texts, labels = read_zhang_csv(ag_news_sample, num_classes=4)
    assert [t for chunk, _ in chunks for t in chunk] == texts
    np.testing.assert_array_equal(np.concatenate([lab for _, lab in chunks]), labels)


def test_iter_chunk_size_larger_than_file_gives_one_chunk(ag_news_sample: Path) -> None:
    chunks = list(iter_zhang_csv(ag_news_sample, chunk_size=1000))
    assert len(chunks) == 1 and len(chunks[0][0]) == 300


def test_malformed_row_one_field_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'"1","a","b"\n"2","c","d"\n"3"\n"4","e","f"\n', "one_field.csv")
    with pytest.raises(CSVFormatError) as info:
        read_zhang_csv(path)
    assert "one_field.csv" in str(info.value)
    assert "line 3" in str(info.value)


def test_malformed_row_class_index_not_integer_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'"1","a","b"\n"World","c","d"\n', "nonint.csv")
    with pytest.raises(CSVFormatError, match="not an integer") as info:
        read_zhang_csv(path)
    assert "nonint.csv" in str(info.value) and "line 2" in str(info.value)


def test_class_index_above_num_classes_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path, b'"1","a","b"\n"4","c","d"\n"5","e","f"\n', "five.csv")
    with pytest.raises(CSVFormatError, match="out of range") as info:
        read_zhang_csv(path, num_classes=4)
    assert "five.csv" in str(info.value) and "line 3" in str(info.value)
    # Without num_classes the same file is accepted.
    _, labels = read_zhang_csv(path)
    assert labels.tolist() == [0, 3, 4]


@pytest.mark.parametrize("num_classes", [None, 4])
def test_class_index_zero_out_of_range_names_file_and_line(tmp_path: Path, num_classes: int | None) -> None:
    path = write(tmp_path, b'"0","a","b"\n', "zero.csv")
    with pytest.raises(CSVFormatError, match="out of range") as info:
        read_zhang_csv(path, num_classes=num_classes)
    assert "zero.csv" in str(info.value) and "line 1" in str(info.value)


def test_non_utf8_bytes_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, b'"1","fine","text"\n"2","bad \xff\xfe bytes","here"\n"3","x","y"\n', "latin.csv")
    with pytest.raises(CSVFormatError) as info:
        read_zhang_csv(path)
    assert "latin.csv" in str(info.value)
    assert "line 2" in str(info.value)
    assert "UTF-8" in str(info.value)
    assert "at byte 9" in str(info.value) and r"b'\xff'" in str(info.value)  # the first bad byte's offset


def test_empty_file_error_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"", "empty.csv")
    with pytest.raises(CSVFormatError, match=r"empty\.csv: file is empty"):
        read_zhang_csv(path)
    with pytest.raises(CSVFormatError, match=r"empty\.csv: file is empty"):
        list(iter_zhang_csv(path))


@pytest.mark.parametrize("content", [b'"1","ok"\n"1","unterminated', b'"1","ok"\n"1","unterminated\n',
                                     b'"1","stray"quote"\n'])
def test_malformed_row_broken_quoting_names_file_and_line(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, content, "quotes.csv")
    with pytest.raises(CSVFormatError) as info:
        read_zhang_csv(path)
    assert "quotes.csv" in str(info.value) and "line " in str(info.value)


def test_crlf_row_ends_do_not_leak_into_text(tmp_path: Path) -> None:
    """Synthetic: rows ending in CRLF read like rows ending in LF."""
    path = write(tmp_path, b'"2","title","desc"\r\n"1","t","d\\e"\r\n', "crlf.csv")
    texts, labels = read_zhang_csv(path, num_classes=2)
    assert labels.tolist() == [1, 0]
    assert texts == ["title\ndesc", "t\nd\ne"]


@pytest.mark.parametrize("chunk_size", [0, -1])
def test_chunk_size_below_one_raises_value_error(ag_news_sample: Path, chunk_size: int) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        iter_zhang_csv(ag_news_sample, chunk_size=chunk_size)  # at creation, before any next()


def test_missing_file_raises_at_creation(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        iter_zhang_csv(tmp_path / "nope.csv")
