"""Tests of utils.scaling (fits and extrapolation, on synthetic sweep results that say so) and of bench/scaling.py's
command line and document pool (the pool test reads the real IMDB file list)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bench import scaling
from utils import REPO_ROOT, datasets

BENCH = REPO_ROOT / "bench" / "scaling.py"


def synthetic_sweep() -> list[dict]:
    """Synthetic sweep results with known growth: 'dense' grows 0.1 MB per document, 'streaming' is flat."""
    results = []
    for n in (1000, 2000, 4000, 8000):
        results.append({"approach": "dense", "train_size": n, "peak_rss_mb": 800 + 0.1 * n,
                        "epoch_median_seconds": 0.001 * n})
        results.append({"approach": scaling.STREAMING, "train_size": n, "peak_rss_mb": 900.0,
                        "epoch_median_seconds": 0.002 * n})
        results.append({"approach": scaling.VECTORIZING, "train_size": n, "peak_rss_mb": 200 + 0.05 * n,
                        "start_rss_mb": 200.0, "seconds": 0.0005 * n, "epoch_median_seconds": None})
    return results


def test_fit_line_recovers_an_exact_line() -> None:
    fit = scaling.fit_line([1, 2, 4], [3.0, 5.0, 9.0])
    assert fit.intercept == pytest.approx(1.0) and fit.slope == pytest.approx(2.0)
    assert fit.predict(10) == pytest.approx(21.0)
    assert np.allclose(fit.predict(np.array([0, 1])), [1.0, 3.0])
    assert fit.largest_measured == 4


def test_fit_line_needs_two_distinct_sizes_and_equal_lengths() -> None:
    with pytest.raises(ValueError, match="two distinct sizes"):
        scaling.fit_line([5, 5], [1.0, 2.0])
    with pytest.raises(ValueError, match="2 sizes but 3 values"):
        scaling.fit_line([1, 2], [1.0, 2.0, 3.0])


def test_fit_growth_per_approach() -> None:
    fits = scaling.fit_growth(synthetic_sweep())
    assert set(fits) == {"dense", scaling.STREAMING, scaling.VECTORIZING}
    assert fits["dense"]["memory"].slope == pytest.approx(0.1)
    assert fits[scaling.STREAMING]["memory"].slope == pytest.approx(0.0, abs=1e-12)
    assert fits[scaling.VECTORIZING]["time"].slope == pytest.approx(0.0005)  # its one-off seconds


def test_extrapolate_adds_vectorizing_to_in_memory_approaches_and_gives_verdicts() -> None:
    rows = scaling.extrapolate(synthetic_sweep(), {"small": 4000, "big": 100_000})
    by = {(r.dataset, r.approach): r for r in rows}
    assert {r.approach for r in rows} == {"dense", scaling.STREAMING}
    big_dense = by["big", "dense"]
    # training 800 + 0.1 n MB, plus vectorizing's growth 0.05 n MB
    assert big_dense.peak_gb == pytest.approx((800 + 0.15 * 100_000) / 1000)
    assert big_dense.fits == {8: False, 16: True, 64: True}
    assert big_dense.extrapolated and not by["small", "dense"].extrapolated
    assert by["big", scaling.STREAMING].peak_gb == pytest.approx(0.9)
    assert by["big", scaling.STREAMING].epoch_seconds == pytest.approx(200.0)
    table = scaling.format_predictions(rows)
    assert "big" in table and "100,000*" in table and "3.3 min" in table


SYNTHETIC_VOCABULARY = scaling.VocabularyGrowth(scaling.HeapsLaw(k=10.0, beta=0.7, largest_measured=10**6), 100.0,
                                                "synthetic")


def shaped_sweep() -> list[dict]:
    """Synthetic vectorizing peaks that follow the Heaps shape exactly: 200 MB + 0.004 MB/doc + 250 B per 1-2-gram."""
    return [{"approach": scaling.VECTORIZING, "train_size": n, "start_rss_mb": 200.0, "seconds": 0.0005 * n,
             "peak_rss_mb": 200 + 0.004 * n + 250e-6 * SYNTHETIC_VOCABULARY.ngrams(n)}
            for n in (1000, 2500, 5000, 10_000, 25_000)] + [
            r for r in synthetic_sweep() if r["approach"] == "dense"]


def test_vectorizing_fit_recovers_the_heaps_shape_and_extrapolates_below_a_line() -> None:
    fits = scaling.fit_growth(shaped_sweep(), SYNTHETIC_VOCABULARY)
    shaped = fits[scaling.VECTORIZING]["memory"]
    assert isinstance(shaped, scaling.VectorizingFit) and isinstance(fits["dense"]["memory"], scaling.LinearFit)
    assert shaped.per_document == pytest.approx(0.004, rel=1e-6) and shaped.per_ngram == pytest.approx(250e-6, rel=1e-6)
    line = scaling.fit_growth(shaped_sweep())[scaling.VECTORIZING]["memory"]
    assert shaped.predict(3_600_000) < line.predict(3_600_000)  # a line overstates a sublinear dictionary
    assert shaped.predict(3_600_000) == pytest.approx(200 + 0.004 * 3.6e6 + 250e-6 * SYNTHETIC_VOCABULARY.ngrams(3.6e6))
    rows = scaling.extrapolate(shaped_sweep(), {"big": 3_600_000}, vocabulary=SYNTHETIC_VOCABULARY)
    dense = next(r for r in rows if r.approach == "dense")
    assert dense.peak_gb == pytest.approx((800 + 0.1 * 3.6e6 + shaped.predict(3.6e6) - 200) / 1000)


def test_extrapolate_in_tokens_predicts_memory_at_the_documents_that_hold_as_many_tokens() -> None:
    # a corpus of 3.6 M documents a quarter as long as the sweep's (25 tokens against 100): memory as at 0.9 M
    by_documents = scaling.extrapolate(shaped_sweep(), {"short": 900_000}, vocabulary=SYNTHETIC_VOCABULARY)
    by_tokens = scaling.extrapolate(shaped_sweep(), {"short": 3_600_000}, vocabulary=SYNTHETIC_VOCABULARY,
                                    tokens_per_document={"short": 25.0})
    same_tokens, short = by_documents[0], by_tokens[0]
    assert short.sweep_documents == pytest.approx(900_000) and same_tokens.sweep_documents == 900_000
    assert short.peak_gb == pytest.approx(same_tokens.peak_gb)
    # time per epoch stays with the documents: four times the steps
    assert short.epoch_seconds == pytest.approx(4 * same_tokens.epoch_seconds)
    # the dense matrix's training line stays with the documents (a 20,000-column row however short the text)
    renamed = [{**r, "approach": scaling.DENSE} if r["approach"] == "dense" else r for r in shaped_sweep()]
    fits = scaling.fit_growth(renamed, SYNTHETIC_VOCABULARY)
    dense = scaling.extrapolate(renamed, {"short": 3_600_000}, vocabulary=SYNTHETIC_VOCABULARY,
                                tokens_per_document={"short": 25.0})[0]
    vectorizing = fits[scaling.VECTORIZING]["memory"]
    assert dense.peak_gb == pytest.approx((fits[scaling.DENSE]["memory"].predict(3_600_000)
                                           + vectorizing.predict(900_000) - 200) / 1000)
    with pytest.raises(ValueError, match="needs the sweep corpus's vocabulary"):
        scaling.extrapolate(shaped_sweep(), {"short": 10}, tokens_per_document={"short": 25.0})
    with pytest.raises(ValueError, match=r"no entry for \['other'\]"):
        scaling.extrapolate(shaped_sweep(), {"short": 10, "other": 10}, vocabulary=SYNTHETIC_VOCABULARY,
                            tokens_per_document={"short": 25.0})


def test_standin_tokens_per_document_reads_the_committed_stand_ins() -> None:
    tokens = scaling.standin_tokens_per_document()
    assert set(tokens) == {"ag_news", "dbpedia", "yelp_polarity", "amazon_polarity"}
    assert tokens["ag_news"] < tokens["dbpedia"] < tokens["amazon_polarity"] < tokens["yelp_polarity"]
    assert 20 < tokens["ag_news"] < 60 and 100 < tokens["yelp_polarity"] < 200


def test_against_measured_pairs_each_prediction_with_its_full_size_run() -> None:
    streaming = scaling.STREAMING  # measured by chapter 10 as its "streaming" route
    renamed = [{**r, "approach": streaming} if r["approach"] == "dense" else r for r in shaped_sweep()]
    by_documents = scaling.extrapolate(renamed, {"big": 3_600_000, "small": 120_000}, vocabulary=SYNTHETIC_VOCABULARY)
    by_tokens = scaling.extrapolate(renamed, {"big": 3_600_000, "small": 120_000}, vocabulary=SYNTHETIC_VOCABULARY,
                                    tokens_per_document={"big": 25.0, "small": 50.0})
    records = [
        {"dataset": "big", "route": scaling.MEASURED_AS[streaming], "status": "exceeded_budget",
         "peak_rss_mb": 16_400.0, "details": None},
        {"dataset": "small", "route": scaling.MEASURED_AS[streaming], "status": "completed", "peak_rss_mb": 900.0,
         "details": {"epoch_seconds": [30.0, 26.0]}},
        {"dataset": "small", "route": "fasttext", "status": "completed", "peak_rss_mb": 700.0, "details": {}},
    ]
    rows = scaling.against_measured(by_documents, by_tokens, records)
    assert [(r.dataset, r.approach) for r in rows] == [("big", streaming), ("small", streaming)]
    big, small = rows
    predicted = {(p.dataset, p.approach): p for p in by_tokens}
    assert big.exceeded_budget and big.epoch_measured_s is None and big.gb_measured == 16.4
    assert big.gb_by_tokens == predicted["big", streaming].peak_gb != big.gb_by_documents
    assert not small.exceeded_budget and small.epoch_measured_s == 26.0  # the last epoch, after warm-up
    table = scaling.format_against_measured(rows).splitlines()
    assert "> 16.4" in table[2] and "stopped" in table[2] and table[3].endswith("26 s")


def test_vectorizing_fit_rates_are_never_negative() -> None:
    sizes = [1000, 2000, 4000]
    fit = scaling.fit_vectorizing(sizes, [300.0, 290.0, 280.0], 200.0, SYNTHETIC_VOCABULARY)  # shrinking: noise
    assert fit.per_document >= 0 and fit.per_ngram >= 0
    with pytest.raises(ValueError, match="two distinct sizes"):
        scaling.fit_vectorizing([5, 5], [1.0, 2.0], 0.0, SYNTHETIC_VOCABULARY)


def test_imdb_vocabulary_reads_the_committed_measurement() -> None:
    vocabulary = scaling.imdb_vocabulary()
    assert 0.5 < vocabulary.law.beta < 1 and 100 < vocabulary.tokens_per_document < 400
    assert vocabulary.ngrams(50_000) == pytest.approx(2_466_212, rel=0.05)  # the measured count at 50,000


def test_vectorizing_start_needs_vectorizing_points() -> None:
    with pytest.raises(ValueError, match="in_memory_vectorizing"):
        scaling.vectorizing_start_mb([r for r in synthetic_sweep() if r["approach"] == "dense"])


def test_format_duration() -> None:
    assert scaling.format_duration(42.4) == "42 s"
    assert scaling.format_duration(450) == "7.5 min"
    assert scaling.format_duration(3 * 3600) == "3.0 h"


def test_bench_scaling_rejects_bad_arguments_by_name() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--approaches", "dense_in_memory,warp_drive"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "unknown approach(es) warp_drive" in done.stderr
    done = subprocess.run([sys.executable, str(BENCH), "--sizes", "10,lots"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2 and "--sizes must be comma-separated integers" in done.stderr


@pytest.mark.skipif(not (datasets.data_home() / "imdb" / "aclImdb" / "train" / "pos").is_dir(),
                    reason="IMDB is not in data/imdb (CI puts it there)")
def test_document_pool_holds_out_test_reviews_it_never_trains_on() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    from bench import scaling as bench_scaling

    paths, labels, held_paths, held_labels = bench_scaling.document_pool(seed=42)
    assert len(paths) == len(labels) == 45_000 and len(held_paths) == len(held_labels) == bench_scaling.HELD_OUT
    assert not set(paths) & set(held_paths)
    assert all("/train/" in p for p in paths[:25_000]) and all("/test/" in p for p in paths[25_000:])
    assert 0.4 < labels[:1000].mean() < 0.6  # seeded order: the labels are mixed, not 12,500 negatives first
