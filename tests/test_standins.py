"""The stand-in corpora: Zhang-format files of the published shape, deterministic, vocabulary on Heaps' law."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utils import standins
from utils.readers import read_zhang_csv
from utils.streaming import SAMPLES_DIR, ZhangCsvRows, documents
from utils.vocabulary import vocabulary_growth

SAMPLE = SAMPLES_DIR / "ag_news_test_head.csv"
AG = standins.STANDINS["ag_news"]
LAWS = standins.load_laws("ag_news_test")


@pytest.fixture(scope="module")
def pool() -> standins.SourcePool:
    """The committed 300 AG News rows by class: a source small enough to be used up fast."""
    texts, labels = read_zhang_csv(SAMPLE, 4)
    return standins.SourcePool([[t for t, y in zip(texts, labels, strict=True) if y == c] for c in range(4)],
                               np.array([len(t.split()) for t in texts]), "sample")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_published_shapes() -> None:
    rows = {name: (spec.rows["train"], spec.rows["test"], spec.num_classes) for name, spec in standins.STANDINS.items()}
    assert rows == {"ag_news": (120_000, 7_600, 4), "dbpedia": (560_000, 70_000, 14),
                    "yelp_polarity": (560_000, 38_000, 2), "amazon_polarity": (3_600_000, 400_000, 2)}
    # Bytes of text per row from the published sizes: Amazon's reviews are shorter than Yelp's, AG's the shortest.
    per_row = {name: spec.text_bytes_per_row for name, spec in standins.STANDINS.items()}
    assert per_row["ag_news"] < per_row["dbpedia"] < per_row["amazon_polarity"] < per_row["yelp_polarity"]
    assert per_row["amazon_polarity"] == pytest.approx(1_604_364_432 / 3_600_000 - 16)


def test_written_file_is_zhang_format_balanced_and_of_the_published_bytes(pool, tmp_path) -> None:
    written = standins.write_split(AG, "train", tmp_path / "train.csv", pool, LAWS, 2_000, seed=0)
    assert written.rows == 2_000 and written.bytes == (tmp_path / "train.csv").stat().st_size
    texts, labels = zip(*documents(ZhangCsvRows(tmp_path / "train.csv", 4)), strict=True)
    assert len(texts) == 2_000
    assert np.bincount(labels).tolist() == [500] * 4
    assert all("\n" in text for text in texts)  # title and description
    assert written.text_bytes_per_row == pytest.approx(AG.text_bytes_per_row, rel=0.05)
    words = np.array([len(t.split()) for t in texts])
    assert words.mean() == pytest.approx(AG.text_bytes_per_row / pool.bytes_per_word, rel=0.05)


def test_one_text_field_for_yelp(pool, tmp_path) -> None:
    yelp_like = replace(AG, title_words=None)
    standins.write_split(yelp_like, "test", tmp_path / "test.csv", pool, LAWS, 40, seed=0)
    first = (tmp_path / "test.csv").read_text().splitlines()[0]
    assert first.startswith('"') and first.count('","') == 1


def test_same_seed_same_bytes_other_seed_other_bytes(pool, tmp_path) -> None:
    paths = [tmp_path / name for name in ("a.csv", "b.csv", "c.csv")]
    for path, seed in zip(paths, (0, 0, 1), strict=True):
        standins.write_split(AG, "train", path, pool, LAWS, 3_000, seed=seed)
    assert sha256(paths[0]) == sha256(paths[1]) != sha256(paths[2])


def test_text_is_untouched_until_the_source_is_used_up(pool) -> None:
    rng = np.random.default_rng(0)
    novelty = standins.Novelty(*LAWS, pool, pool.tokens, rng)
    rows = list(standins.generate_rows(AG, pool, LAWS, 100, rng, novelty))
    assert novelty.tokens < pool.tokens
    assert novelty.coined == novelty.placed == 0
    source_words = {w for docs in pool.documents for doc in docs for w in doc.split()}
    assert all(w in source_words for row in rows for w in " ".join(row[1:]).split())


def test_vocabulary_follows_heaps_law_far_past_the_source(pool) -> None:
    """300 real rows recycled into 20,000: distinct words and 1–2-grams as the law says, within 3 %."""
    rng = np.random.default_rng(0)
    novelty = standins.Novelty(*LAWS, pool, 20_000 * 40, rng)
    rows = standins.generate_rows(AG, pool, LAWS, 20_000, rng, novelty)
    points = vocabulary_growth(("\n".join(row[1:]) for row in rows), [2_000, 20_000])
    assert points[-1].tokens > 50 * pool.tokens
    for point in points:
        assert point.words == pytest.approx(LAWS[0].predict(point.tokens), rel=0.03)
        assert point.ngrams == pytest.approx(LAWS[1].predict(point.tokens), rel=0.03)
    assert novelty.coined > 0 and novelty.placed > 0


def test_recycling_alone_would_stall_the_vocabulary(pool) -> None:
    """The reason for :class:`Novelty`: without it, 20,000 recycled rows hold about the 300 rows' vocabulary."""
    rng = np.random.default_rng(0)
    frozen = standins.Novelty(*LAWS, pool, 1, rng)
    frozen.source_tokens = 10**12  # never used up: nothing is added
    rows = standins.generate_rows(AG, pool, LAWS, 20_000, rng, frozen)
    last = vocabulary_growth(("\n".join(row[1:]) for row in rows), [20_000])[-1]
    assert last.words < 0.25 * LAWS[0].predict(last.tokens)


def test_coined_words_are_distinct_and_never_english() -> None:
    words = [standins.coined_word(i) for i in range(30_000)]
    assert len(set(words)) == len(words)
    assert all(w.startswith("qz") and w.isalpha() and w.islower() for w in words)
    assert words[:3] == ["qza", "qzb", "qzc"] and words[26] == "qzba"


@settings(max_examples=50, deadline=None)
@given(items=st.integers(1, 60), clusters=st.integers(1, 7), seed=st.integers(0, 1000))
def test_balanced_assignment_fills_clusters_equally(items, clusters, seed) -> None:
    distances = np.random.default_rng(seed).random((items, clusters))
    assigned = standins.balanced_assignment(distances)
    sizes = np.bincount(assigned, minlength=clusters)
    assert assigned.min() >= 0 and sizes.max() - sizes.min() <= 1 and sizes.sum() == items


def test_balanced_assignment_keeps_nearest_when_there_is_room() -> None:
    distances = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert standins.balanced_assignment(distances).tolist() == [0, 1, 0, 1]


def test_write_standin_end_to_end_from_the_ag_news_sample(tmp_path) -> None:
    data = tmp_path / "data"
    (data / "ag_news_test").mkdir(parents=True)
    shutil.copy(SAMPLE, data / "ag_news_test" / "test.csv")
    written = standins.write_standin("ag_news", tmp_path / "out", scale=0.01, data_dir=data)
    assert {split: f.rows for split, f in written.items()} == {"train": 1_200, "test": 76}
    meta = json.loads((tmp_path / "out" / "ag_news" / "standin.json").read_text())
    assert meta["files"]["train"]["rows"] == 1_200 and meta["heaps_ngrams"]["beta"] == pytest.approx(LAWS[1].beta)
    # The train and test files are made from different source rows.
    train = {t for t, _ in documents(ZhangCsvRows(tmp_path / "out" / "ag_news" / "train.csv", 4))}
    test = {t for t, _ in documents(ZhangCsvRows(tmp_path / "out" / "ag_news" / "test.csv", 4))}
    assert not train & test


def test_bad_arguments_are_named(tmp_path) -> None:
    with pytest.raises(KeyError, match="unknown stand-in 'imdb'"):
        standins.write_standin("imdb", tmp_path)
    with pytest.raises(ValueError, match="scale must be in"):
        standins.write_standin("ag_news", tmp_path, scale=0.0)
    with pytest.raises(ValueError, match="every class needs"):
        standins.SourcePool([["a b c"], []], np.array([3]), "empty class")


def test_an_interrupted_write_leaves_the_old_file(pool, tmp_path, monkeypatch) -> None:
    path = tmp_path / "train.csv"
    path.write_text("old\n")

    def broken(*args, **kwargs):
        yield ["1", "title", "text"]
        raise KeyboardInterrupt

    monkeypatch.setattr(standins, "generate_rows", broken)
    with pytest.raises(KeyboardInterrupt):
        standins.write_split(AG, "train", path, pool, LAWS, 10, seed=0)
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["train.csv"]
