"""Shared set-up of the unit tests: quiet TensorFlow, headless matplotlib, ``import utils`` from anywhere."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Before anything imports TensorFlow or matplotlib.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["MPLBACKEND"] = "Agg"

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

AG_NEWS_SAMPLE = REPO_ROOT / "data" / "samples" / "ag_news_test_head.csv"


@pytest.fixture
def ag_news_sample() -> Path:
    """The committed excerpt of AG News: the first 300 rows of its test split (see data/samples/README.md)."""
    return AG_NEWS_SAMPLE
