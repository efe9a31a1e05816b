"""Tests of utils.memory_scaling on the committed AG News excerpt (300 real rows), kept small."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import memory_scaling
from utils import streaming


def test_pipelines_yield_one_epoch(ag_news_sample: Path, tmp_path: Path) -> None:
    stream = streaming.ZhangCsvRows(ag_news_sample, 4).head(200)
    assert memory_scaling.streaming_pipeline(stream, tmp_path, chunk_size=64, rows_per_bucket=50,
                                             batch_size=32) == 7
    assert memory_scaling.in_memory_pipeline(stream, batch_size=32) == 7


def test_measure_runs_each_point_in_its_own_process(ag_news_sample: Path) -> None:
    stream = streaming.ZhangCsvRows(ag_news_sample, 4).head(100)
    results = memory_scaling.measure([("streaming", stream), ("in_memory", stream)], workers=2)
    assert [r["batches"] for r in results] == [1, 1]
    for r in results:
        assert r["peak_rss_bytes"] >= r["start_rss_bytes"] > 10**7
        assert r["seconds"] > 0


def test_measure_rejects_unknown_approach(ag_news_sample: Path) -> None:
    with pytest.raises(ValueError, match="approach"):
        memory_scaling.measure([("mmap", streaming.ZhangCsvRows(ag_news_sample, 4))])
