"""Tests of chapter 11's benchmarks: bench.route_profile (the tf-idf route stage by stage) and bench.fast_route
(the fixes, the tokenizers). The committed AG News excerpt (real, 300 rows) and IMDB where it is on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench import fast_route, route_profile
from utils.processes import run_fresh
from utils.readers import read_zhang_csv
from utils.vectorize import NgramVectorizer


def test_stage_features_build_the_matrix_ngram_vectorizer_builds(ag_news_sample: Path) -> None:
    texts, labels = read_zhang_csv(ag_news_sample, 4)
    staged, whole = route_profile.StageFeatures(top_k=500), NgramVectorizer(top_k=500)
    np.testing.assert_allclose(staged.fit_transform(texts[:250], labels[:250]).toarray(),
                               whole.fit_transform(texts[:250], labels[:250]).toarray(), rtol=1e-6)
    np.testing.assert_allclose(staged.transform(texts[250:]).toarray(), whole.transform(texts[250:]).toarray(),
                               rtol=1e-6)
    assert set(staged.seconds) == {"tokenize", "count", "idf", "select", "test_features"}
    assert all(seconds >= 0 or stage == "count" for stage, seconds in staged.seconds.items())


def test_quick_profile_times_every_stage(tmp_path: Path, imdb_on_disk: None) -> None:
    path = tmp_path / "profile.json"
    assert route_profile.main(["--dataset", "imdb", "--quick", "--epochs", "2", "--json", str(path)]) == 0
    profile = json.loads(path.read_text())
    assert list(profile["seconds"]) == list(route_profile.STAGES)
    assert profile["train_documents"] == profile["test_documents"] == route_profile.QUICK_LIMIT
    assert len(profile["epoch_seconds"]) == 2 and profile["seconds"]["train"] >= sum(profile["epoch_seconds"])
    assert 0.5 < profile["test_accuracy"] <= 1 and profile["vocabulary"] > 10_000


def test_tokenizers_find_the_same_ngrams(imdb_on_disk: None) -> None:
    counts = {tokenizer: run_fresh(fast_route.tokenize_seconds, tokenizer, 300, 0, daemon=False)
              for tokenizer in fast_route.TOKENIZERS}
    assert counts["sklearn_1_process"]["ngrams"] == counts["sklearn_2_workers"]["ngrams"]
    # TensorFlow's string ops find scikit-learn's tokens; only the hash function (and so a few collisions) differs
    assert abs(counts["tensorflow_string_ops"]["ngrams"] / counts["sklearn_1_process"]["ngrams"] - 1) < 0.001
    assert counts["tensorflow_string_ops"]["import_seconds"] > 0 == counts["sklearn_2_workers"]["import_seconds"]


def test_a_failing_fix_is_recorded_with_what_was_unsupported(imdb_on_disk: None) -> None:
    record = fast_route.run_once("ours_hashed_mlp", {"backend": "tensorflow", "epochs": 1, "jit_compile": True},
                                 300, 0)
    assert record["error"].endswith("InvalidArgumentError: Graph execution error:")
    assert "SparseFillEmptyRows" in record["unsupported"]


def test_quick_ladder_writes_median_runs_and_their_spread(tmp_path: Path, monkeypatch, imdb_on_disk: None) -> None:
    fastest = fast_route.RUNGS[-1]
    monkeypatch.setattr(fast_route, "RUNGS", (fastest,))
    monkeypatch.setattr(fast_route, "SIDE", tuple(s for s in fast_route.SIDE if s[0] == "batch_512"))
    monkeypatch.setattr(fast_route, "TOKENIZERS", ("sklearn_2_workers",))
    monkeypatch.setattr(fast_route, "QUICK_LIMIT", 300)
    path = tmp_path / "ladder.json"
    assert fast_route.main(["--quick", "--repeats", "2", "--json", str(path)]) == 0
    ladder = json.loads(path.read_text())
    assert [r["key"] for r in ladder["rungs"]] == ["overlap"] and ladder["side"][0]["rung"] == "overlap"
    for record in ladder["rungs"] + ladder["side"]:
        assert len(record["runs"]) == 2 and record["options"]["epochs"] == 1  # --quick: one epoch less
        assert record["seconds"] in [run["seconds"] for run in record["runs"]]
    assert ladder["side"][0]["options"]["batch_size"] == 512 and ladder["side"][0]["details"]["batch_size"] == 512
    assert len(ladder["tokenizers"][0]["runs_seconds"]) == 2 and ladder["repeats"] == 2


def test_quick_steps_measure_chapter_04s_pipelines_on_a_corpus(tmp_path: Path, imdb_on_disk: None) -> None:
    path = tmp_path / "steps.json"
    assert fast_route.main(["--quick", "--steps", "imdb", "300", "--json", str(path)]) == 0
    steps = json.loads(path.read_text())
    assert [r["pipeline"] for r in steps["results"]] == list(fast_route.STEP_PIPELINES)
    assert steps["data"]["train_samples"] == 300 and steps["data"]["classes"] == 2 and steps["epochs"] == 2
    assert all(r["ms_per_step"] > 0 and 0.4 < r["test_accuracy"] <= 1 for r in steps["results"])
