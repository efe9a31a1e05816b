"""Tests of utils.streaming, the readers that stream documents from disk in chunks.

The CSV tests read the committed excerpt of the real AG News test file (data/samples/ag_news_test_head.csv);
the error tests and the one-file-per-document tests write small synthetic files to tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from utils import datasets, streaming
from utils.datasets import DatasetError, load, split_train_validation
from utils.readers import CSVFormatError, read_zhang_csv


def write_aclimdb(root: Path, per_class: int = 6) -> Path:
    """Write a synthetic aclImdb folder (train and test, neg and pos) and return it."""
    folder = root / "aclImdb"
    for split in ("train", "test"):
        for sub in ("neg", "pos"):
            (folder / split / sub).mkdir(parents=True)
            for i in range(per_class):
                (folder / split / sub / f"{i}_{i + 1}.txt").write_text(f"{split} {sub} review number {i}",
                                                                       encoding="utf-8")
    return folder


def documents_of(stream: streaming.DocumentStream, chunk_size: int = 1000) -> tuple[list[str], list[int]]:
    """All texts and labels of a stream."""
    pairs = list(streaming.documents(stream, chunk_size))
    return [text for text, _ in pairs], [label for _, label in pairs]


# --- one document per file -------------------------------------------------------------------------------------


def test_document_files_chunks_in_order(tmp_path: Path) -> None:
    paths = []
    for i in range(7):
        path = tmp_path / f"{i}.txt"
        path.write_text(f"document {i}", encoding="utf-8")
        paths.append(str(path))
    stream = streaming.DocumentFiles(tuple(paths), np.arange(7) % 2, num_classes=2)
    chunks = list(stream.chunks(3))
    assert [len(texts) for texts, _ in chunks] == [3, 3, 1]
    assert [t for texts, _ in chunks for t in texts] == [f"document {i}" for i in range(7)]
    assert np.concatenate([labels for _, labels in chunks]).tolist() == [0, 1, 0, 1, 0, 1, 0]
    assert len(stream) == 7 and len(stream.head(2)) == 2


def test_document_files_reread_on_every_pass(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("first", encoding="utf-8")
    stream = streaming.DocumentFiles((str(path),), np.array([0]), 2)
    assert documents_of(stream)[0] == ["first"]
    path.write_text("second", encoding="utf-8")
    assert documents_of(stream)[0] == ["second"]


def test_non_utf8_document_error_names_file_and_byte(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("fine", encoding="utf-8")
    bad = tmp_path / "12_3.txt"
    bad.write_bytes("Un film \xe9mouvant".encode("latin-1"))
    stream = streaming.DocumentFiles((str(good), str(bad)), np.array([0, 1]), 2)
    chunks = stream.chunks(1)
    assert next(chunks)[0] == ["fine"]
    with pytest.raises(DatasetError) as info:
        next(chunks)
    assert "12_3.txt" in str(info.value)
    assert "byte 8" in str(info.value) and "UTF-8" in str(info.value)


def test_chunk_size_checked_at_once(tmp_path: Path, ag_news_sample: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        streaming.DocumentFiles((), np.zeros(0), 2).chunks(0)
    with pytest.raises(ValueError, match="chunk_size"):
        streaming.ZhangCsvRows(ag_news_sample, 4).chunks(0)


def test_paths_and_labels_must_match() -> None:
    with pytest.raises(ValueError, match="2 paths but 1 labels"):
        streaming.DocumentFiles(("a", "b"), np.array([0]), 2)


def test_open_streams_imdb_matches_load_split(tmp_path: Path) -> None:
    write_aclimdb(tmp_path / "imdb")
    streams = streaming.open_streams("imdb", tmp_path, validation_fraction=0.25)
    data = load("imdb", tmp_path, validation_fraction=0.25)
    assert documents_of(streams.train, 4) == (data.train_texts, data.train_labels.tolist())
    assert documents_of(streams.val, 4) == (data.val_texts, data.val_labels.tolist())
    assert documents_of(streams.test, 4) == (data.test_texts, data.test_labels.tolist())
    assert streams.num_classes == 2


def test_aclimdb_files_order_neg_then_pos(tmp_path: Path) -> None:
    folder = write_aclimdb(tmp_path, per_class=3)
    paths, labels = streaming.aclimdb_files(folder, "train")
    assert [Path(p).parent.name for p in paths] == ["neg"] * 3 + ["pos"] * 3
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    # the same order split_train_validation sees in datasets.load
    assert split_train_validation(paths, labels, 0.5)[0] == split_train_validation(paths, labels, 0.5)[0]


# --- Zhang CSV rows ---------------------------------------------------------------------------------------------


def test_csv_all_rows_equal_whole_read(ag_news_sample: Path) -> None:
    texts, labels = read_zhang_csv(ag_news_sample, 4)
    stream = streaming.ZhangCsvRows(ag_news_sample, 4)
    assert documents_of(stream, 64) == (texts, labels.tolist())


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
def test_csv_parts_are_disjoint_and_cover_the_file(ag_news_sample: Path, chunk_size: int) -> None:
    texts, _ = read_zhang_csv(ag_news_sample, 4)
    train = documents_of(streaming.ZhangCsvRows(ag_news_sample, 4, "train", 0.2, seed=3), chunk_size)[0]
    val = documents_of(streaming.ZhangCsvRows(ag_news_sample, 4, "validation", 0.2, seed=3), chunk_size)[0]
    assert sorted(train + val) == sorted(texts)
    assert len(train) + len(val) == 300
    assert 30 <= len(val) <= 90  # 20% of 300 = 60, binomial
    # the split does not depend on the chunk size
    reference = documents_of(streaming.ZhangCsvRows(ag_news_sample, 4, "validation", 0.2, seed=3), 300)[0]
    assert val == reference


def test_csv_split_changes_with_seed(ag_news_sample: Path) -> None:
    a = documents_of(streaming.ZhangCsvRows(ag_news_sample, 4, "validation", 0.2, seed=1))[0]
    b = documents_of(streaming.ZhangCsvRows(ag_news_sample, 4, "validation", 0.2, seed=2))[0]
    assert a != b


def test_csv_head_limits_rows(ag_news_sample: Path) -> None:
    stream = streaming.ZhangCsvRows(ag_news_sample, 4, "train").head(50)
    texts, _ = documents_of(stream, 16)
    assert len(texts) == 50
    assert texts == documents_of(streaming.ZhangCsvRows(ag_news_sample, 4, "train"))[0][:50]


def test_csv_malformed_row_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(b'"1","a","b"\n"2","c","d"\n"3"\n"4","e","f"\n')
    stream = streaming.ZhangCsvRows(path, 4, "train", 0.5, seed=0)
    with pytest.raises(CSVFormatError) as info:
        documents_of(stream, 2)
    assert "broken.csv" in str(info.value) and "line 3" in str(info.value)


def test_csv_non_utf8_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b'"1","fine","text"\n"2","caf\xe9","here"\n')
    with pytest.raises(CSVFormatError) as info:
        documents_of(streaming.ZhangCsvRows(path, 4))
    assert "latin.csv" in str(info.value) and "line 2" in str(info.value) and "UTF-8" in str(info.value)


def test_csv_bad_part_and_fraction(ag_news_sample: Path) -> None:
    with pytest.raises(ValueError, match="part"):
        streaming.ZhangCsvRows(ag_news_sample, 4, "test")
    with pytest.raises(ValueError, match="validation_fraction"):
        streaming.ZhangCsvRows(ag_news_sample, 4, "train", 1.0)


def test_estimate_rows(ag_news_sample: Path, tmp_path: Path) -> None:
    assert streaming.estimate_rows(streaming.ZhangCsvRows(ag_news_sample, 4)) == 300
    assert streaming.estimate_rows(streaming.ZhangCsvRows(ag_news_sample, 4, "validation", 0.2)) == 60
    assert streaming.estimate_rows(streaming.ZhangCsvRows(ag_news_sample, 4).head(10)) == 10
    assert streaming.estimate_rows(streaming.DocumentFiles(("a", "b"), np.array([0, 1]), 2)) == 2


def test_find_split_csv_prefers_full_download(tmp_path: Path) -> None:
    lone = tmp_path / "ag_news_test" / "test.csv"
    lone.parent.mkdir()
    lone.write_text('"1","a","b"\n')
    assert streaming.find_split_csv("ag_news", "test", tmp_path) == lone
    full = tmp_path / "ag_news" / "ag_news_csv" / "test.csv"
    full.parent.mkdir(parents=True)
    full.write_text('"1","a","b"\n')
    assert streaming.find_split_csv("ag_news", "test", tmp_path) == full


def test_find_split_csv_missing_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"fetch\('dbpedia'\)"):
        streaming.find_split_csv("dbpedia", "test", tmp_path)
    with pytest.raises(ValueError, match="not a CSV dataset"):
        streaming.find_split_csv("imdb", "test", tmp_path)


def test_split_csv_or_sample_prefers_the_split_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "fetch", lambda *a, **k: pytest.fail("nothing should be downloaded"))
    lone = tmp_path / "ag_news_test" / "test.csv"
    lone.parent.mkdir()
    lone.write_text('"1","a","b"\n')
    found = streaming.split_csv_or_sample("ag_news", "test", tmp_path)
    assert (found.path, found.is_sample) == (lone, False)


def test_split_csv_or_sample_downloads_before_falling_back(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ag_news" / "ag_news_csv"
    calls = []

    def fake_fetch(name: str, data_dir: Path, **kwargs: object) -> Path:
        calls.append(name)
        folder.mkdir(parents=True)
        (folder / "test.csv").write_text('"1","a","b"\n')
        return folder

    monkeypatch.setattr(datasets, "fetch", fake_fetch)
    found = streaming.split_csv_or_sample("ag_news", "test", tmp_path)
    assert calls == ["ag_news"]
    assert (found.path, found.is_sample) == (folder / "test.csv", False)
    assert "downloaded" in found.source


def test_split_csv_or_sample_falls_back_to_the_committed_excerpt(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(name: str, data_dir: Path, **kwargs: object) -> Path:
        raise DatasetError(f"download of {name} failed: no network")

    monkeypatch.setattr(datasets, "fetch", offline)
    found = streaming.split_csv_or_sample("ag_news", "test", tmp_path)
    assert found.is_sample and found.path == streaming.SAMPLES_DIR / "ag_news_test_head.csv"
    assert "could not be downloaded" in found.source and str(tmp_path) not in found.source
    assert streaming.estimate_rows(streaming.ZhangCsvRows(found.path, 4)) == 300
    not_downloaded = streaming.split_csv_or_sample("ag_news", "test", tmp_path, download=False)
    assert not_downloaded.is_sample and "download=False" in not_downloaded.source
    with pytest.raises(DatasetError, match="no network.*no committed excerpt of dbpedia test"):
        streaming.split_csv_or_sample("dbpedia", "test", tmp_path)
