"""utils.vocabulary: vocabulary growth counted on text, and Heaps' law fitted to it; bench/vocabulary_growth.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import vocabulary_growth as bench
from utils import REPO_ROOT
from utils.vocabulary import fit_heaps, guide_analyzer, vocabulary_growth


def test_counts_tokens_words_and_ngrams_by_hand() -> None:
    texts = ["the cat sat", "the cat ran", "a dog"]
    points = vocabulary_growth(texts, [1, 2, 3])
    # doc 1: words the, cat, sat and bigrams "the cat", "cat sat": 5 n-grams
    # doc 2: new word ran and new bigram "cat ran": 7; doc 3: "a" is dropped (one letter), dog is new: 8
    assert [(p.documents, p.tokens, p.words, p.ngrams) for p in points] == [(1, 3, 3, 5), (2, 6, 4, 7),
                                                                           (3, 7, 5, 8)]


def test_uses_the_guides_analyzer() -> None:
    assert guide_analyzer()("Café au LAIT") == ["cafe", "au", "lait", "cafe au", "au lait"]


def test_checkpoints_beyond_the_corpus_give_no_point_and_bad_ones_are_refused() -> None:
    assert [p.documents for p in vocabulary_growth(["a b", "c d"], [1, 5])] == [1]
    for bad in ([], [0, 1], [2, 2], [3, 1]):
        with pytest.raises(ValueError, match="increasing"):
            vocabulary_growth(["x"], bad)


def test_reads_the_stream_only_up_to_the_last_checkpoint() -> None:
    def endless():
        while True:
            yield "same words again"

    assert vocabulary_growth(endless(), [10, 100])[-1].words == 3


@given(k=st.floats(1, 100), beta=st.floats(0.2, 0.95))
def test_fit_recovers_an_exact_power_law(k: float, beta: float) -> None:
    tokens = np.array([1e3, 1e4, 1e5, 1e6])
    law = fit_heaps(tokens.tolist(), (k * tokens**beta).tolist())
    assert law.k == pytest.approx(k, rel=1e-6) and law.beta == pytest.approx(beta, rel=1e-6)
    assert law.largest_measured == 1_000_000
    assert law.predict(1e7) == pytest.approx(k * 1e7**beta, rel=1e-6)


def test_fit_refuses_what_it_cannot_fit() -> None:
    with pytest.raises(ValueError, match="distinct"):
        fit_heaps([10, 10], [5, 6])
    with pytest.raises(ValueError, match="counts but"):
        fit_heaps([10, 20], [5])
    with pytest.raises(ValueError, match=">= 1"):
        fit_heaps([0, 20], [1, 5])


def test_a_real_vocabulary_grows_sublinearly(ag_news_sample: Path) -> None:
    from utils.streaming import ZhangCsvRows

    texts = [t for chunk, _ in ZhangCsvRows(ag_news_sample, 4).chunks() for t in chunk]
    points = vocabulary_growth(texts, [30, 100, 300])
    law = fit_heaps([p.tokens for p in points], [p.words for p in points])
    assert 0.4 < law.beta < 1.0  # fewer new words per token as the corpus grows


def test_checkpoints_are_log_spaced_and_end_at_the_corpus_size() -> None:
    counts = bench.checkpoints_for(7600)
    assert counts[0] == 10 and counts[-1] == 7600 and counts == sorted(set(counts))
    ratios = np.diff(np.log10(counts[:-1]))
    assert np.allclose(ratios, ratios[0], atol=0.03)


def test_quick_run_writes_both_corpora(tmp_path: Path) -> None:
    out = tmp_path / "vocabulary.json"
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "vocabulary_growth.py"), "--quick",
                           "--json", str(out)], capture_output=True, text=True, timeout=300, check=True)
    assert "imdb:" in done.stdout and "ag_news_test:" in done.stdout
    result = json.loads(out.read_text())
    assert result["quick"] and "cores" in result["machine"] and "keras" in result["versions"]
    for record in result["corpora"]:
        words, ngrams = record["heaps_words"], record["heaps_ngrams"]
        assert 0 < words["beta"] < 1 and ngrams["beta"] > words["beta"]  # bigrams keep coming longer
        assert record["points"][-1]["documents"] == record["documents"]
        check = record["extrapolation_check"]
        assert check["fitted_up_to_documents"] <= record["documents"] / 10
        assert abs(check["heaps_error"]) < abs(check["line_error"])  # the straight line overstates more


def test_extrapolation_check_on_an_exact_power_law() -> None:
    from utils.vocabulary import VocabularyPoint

    points = [VocabularyPoint(d, 100 * d, 100 * d, int(20 * (100 * d) ** 0.7)) for d in (100, 300, 1000, 3000, 10_000)]
    check = bench.extrapolation_check(points, fit_from=100)
    assert check["fitted_up_to_documents"] == 1000
    assert abs(check["heaps_error"]) < 1e-3 and check["line_error"] > 0.2
