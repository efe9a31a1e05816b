"""Tests of utils.hashed_pipeline on the committed AG News excerpt (300 real rows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from utils import hashed_tfidf, streaming
from utils.hashed_tfidf import HashedTfidf


def test_tokenize_select_and_read_back(ag_news_sample: Path, tmp_path: Path) -> None:
    splits = {"train": streaming.ZhangCsvRows(ag_news_sample, 4, "train"),
              "val": streaming.ZhangCsvRows(ag_news_sample, 4, "validation")}
    features = HashedTfidf(4, hash_size=2**14, top_k=300)
    caches = hashed_tfidf.tokenize_to_caches(features, splits, tmp_path, rows_per_bucket=50, chunk_size=32)
    assert caches["train"].num_rows + caches["val"].num_rows == 300
    assert features.num_documents == caches["train"].num_rows  # only training documents count towards idf
    assert caches["train"].num_buckets == 5  # about 240 rows / 50
    hashed_tfidf.select_features(features, caches["train"])
    assert features.num_features == 300
    x, y = next(caches["val"].batches(1000, transform=features.transform_counts, shuffle=False))
    assert x.shape == (caches["val"].num_rows, 300) and len(y) == x.shape[0]
    assert np.all(np.isin(y, [0, 1, 2, 3]))


def test_fit_split_must_exist(ag_news_sample: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fit_split"):
        hashed_tfidf.tokenize_to_caches(HashedTfidf(4, hash_size=2**10, top_k=10),
                                           {"all": streaming.ZhangCsvRows(ag_news_sample, 4)}, tmp_path)
