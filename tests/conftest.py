"""Shared set-up of the unit tests: quiet TensorFlow, headless matplotlib, the committed AG News excerpt, IMDB."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from utils import REPO_ROOT, datasets

# Before anything imports TensorFlow or matplotlib.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["MPLBACKEND"] = "Agg"

AG_NEWS_SAMPLE = REPO_ROOT / "data" / "samples" / "ag_news_test_head.csv"


@pytest.fixture
def ag_news_sample() -> Path:
    """The committed excerpt of AG News: the first 300 rows of its test split (see data/samples/README.md)."""
    return AG_NEWS_SAMPLE


@pytest.fixture
def imdb_on_disk() -> None:
    """Skip the test unless IMDB is extracted where ``utils.datasets`` looks (CI puts it there)."""
    if not (datasets.data_home() / "imdb" / "aclImdb" / "train" / "pos").is_dir():
        pytest.skip("IMDB is not in data/imdb (CI puts it there)")
