"""Shared set-up of the unit tests: quiet TensorFlow, headless matplotlib, the committed AG News excerpt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from utils import REPO_ROOT

# Before anything imports TensorFlow or matplotlib.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["MPLBACKEND"] = "Agg"

AG_NEWS_SAMPLE = REPO_ROOT / "data" / "samples" / "ag_news_test_head.csv"


@pytest.fixture
def ag_news_sample() -> Path:
    """The committed excerpt of AG News: the first 300 rows of its test split (see data/samples/README.md)."""
    return AG_NEWS_SAMPLE
