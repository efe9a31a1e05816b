"""Tests of bench.peers on a small synthetic corpus (written to a temporary folder; it says so: words chosen so that
the label is learnable) and on the pure helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import peers
from utils import REPO_ROOT, streaming
from utils.readers import read_zhang_csv


def many_class_csv(folder: Path, classes: int, rows: int, seed: int) -> streaming.ZhangCsvRows:
    """Write a synthetic Zhang CSV of ``rows`` short texts in ``classes`` classes: each class has 3 words of its
    own, a row 2 of them among 6 shared filler words; return its stream."""
    import csv

    rng = np.random.default_rng(seed)
    filler = ["the", "a", "news", "report", "today", "people"]
    labels = rng.integers(0, classes, rows)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{seed}.csv"
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        for label in labels.tolist():
            words = [f"topic{label}word{i}" for i in rng.integers(0, 3, 2)] + list(rng.choice(filler, 6))
            rng.shuffle(words)
            writer.writerow([label + 1, "Title", " ".join(words)])
    return streaming.ZhangCsvRows(path, classes)


def synthetic_corpus(folder: Path, size: int, seed: int) -> streaming.DocumentFiles:
    """Write ``size`` synthetic documents, one per file; positives use 'good' words, negatives 'bad' ones."""
    rng = np.random.default_rng(seed)
    words = {0: ["awful", "boring", "bad", "dull"], 1: ["great", "superb", "good", "fun"]}
    filler = ["the", "movie", "was", "a", "plot", "and", "actors"]
    folder.mkdir(parents=True, exist_ok=True)
    paths, labels = [], rng.integers(0, 2, size)
    for i, label in enumerate(labels):
        tokens = list(rng.choice(filler, 8)) + list(rng.choice(words[int(label)], 2))
        rng.shuffle(tokens)
        path = folder / f"{i}.txt"
        path.write_text(" ".join(tokens) + ".<br />End!", encoding="utf-8")
        paths.append(str(path))
    return streaming.DocumentFiles(tuple(paths), labels.astype(np.int64), 2)


def test_clock_charges_every_point_the_first_scoring_and_no_later_one(monkeypatch) -> None:
    # scripted time.perf_counter(): a score reads it when scoring starts, when it ends, and for the point
    now = iter([0.0, 10.0, 13.0, 13.0, 20.0, 21.0, 21.0, 30.0, 40.0, 41.0, 41.0, 50.0]).__next__
    monkeypatch.setattr(peers.time, "perf_counter", now)
    clock = peers.Clock()  # 0
    assert clock.score(lambda: 0.5) == (13.0, 0.5)  # trained until 10, scored until 13 (3 s: test set prepared)
    assert clock.score(lambda: 0.6) == (17.0 + 3.0, 0.6)  # 17 s of work (the 1 s scoring left out), + the first 3 s
    with clock.counted_once():  # a separate model from 30 to 50: it counts for the point scored inside only
        assert clock.score(lambda: 0.7) == (41.0 - 3.0 - 1.0 - 1.0 + 3.0, 0.7)
    assert clock.excluded == 3.0 + 1.0 + 20.0  # both scorings, then the whole separate run


def test_time_to_reach_returns_the_first_point_at_or_above_target() -> None:
    trace = [(1.0, 0.80), (2.0, 0.88), (3.0, 0.90)]
    assert peers.time_to_reach(trace) == 2.0
    assert peers.time_to_reach(trace, 0.95) is None
    assert peers.time_to_reach([]) is None


def test_fasttext_line_lowercases_and_splits_punctuation() -> None:
    assert peers.fasttext_line("Great film!<br />Isn't it?") == "great film ! isn't it ?"


def test_write_fasttext_file_writes_one_labelled_line_per_document(tmp_path: Path) -> None:
    stream = synthetic_corpus(tmp_path / "docs", 7, seed=0)
    out = tmp_path / "train.txt"
    assert peers.write_fasttext_file(stream, out, chunk_size=3) == 7
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 7
    assert [line.split()[0] for line in lines] == [f"__label__{k}" for k in stream.labels.tolist()]
    assert all("<br" not in line and line.endswith("end !") for line in lines)


def test_sgd_out_of_core_learns_and_traces_every_pass(tmp_path: Path) -> None:
    train = synthetic_corpus(tmp_path / "train", 300, seed=1)
    test = synthetic_corpus(tmp_path / "test", 100, seed=2)
    result = peers.sgd_out_of_core(train, test, passes=2, chunk_size=64, hash_size=2**12)
    assert len(result.trace) == 2 and result.trace[0][0] < result.trace[1][0] == result.seconds
    assert result.test_accuracy == result.trace[-1][1] > 0.95
    with pytest.raises(ValueError, match="passes"):
        peers.sgd_out_of_core(train, test, passes=0)


def test_logistic_regression_chooses_c_on_validation_rows_and_learns(tmp_path: Path) -> None:
    train = synthetic_corpus(tmp_path / "train", 300, seed=5)
    test = synthetic_corpus(tmp_path / "test", 100, seed=6)
    texts = [streaming.read_document(p) for p in train.paths]
    test_texts = [streaming.read_document(p) for p in test.paths]
    result = peers.logistic_regression(texts, train.labels, test_texts, test.labels, c_values=(1e-6, 10.0))
    scores = result.details["validation_accuracy"]
    assert set(scores) == {1e-6, 10.0} and scores[result.details["C"]] == max(scores.values())
    result = peers.logistic_regression(texts, train.labels, test_texts, test.labels, c_values=(10.0,))
    assert result.test_accuracy > 0.9 and result.seconds >= result.details["feature_seconds"]
    assert result.trace == [(result.seconds, result.test_accuracy)]
    with pytest.raises(ValueError, match="c_values"):
        peers.logistic_regression(texts, train.labels, test_texts, test.labels, c_values=())
    with pytest.raises(ValueError, match="300 training texts but 2 labels"):
        peers.logistic_regression(texts, train.labels[:2], test_texts, test.labels)


def test_fasttext_supervised_learns_with_one_model_per_epoch_count(tmp_path: Path) -> None:
    pytest.importorskip("fasttext")
    train = synthetic_corpus(tmp_path / "train", 300, seed=3)
    test = synthetic_corpus(tmp_path / "test", 100, seed=4)
    result = peers.fasttext_supervised(train, test, epochs=(1, 5), dim=10, threads=1, workdir=tmp_path)
    assert len(result.trace) == 2 and result.test_accuracy == result.trace[-1][1] > 0.9
    assert not list(tmp_path.glob("fasttext-*"))  # its files are removed
    with pytest.raises(ValueError, match="epochs"):
        peers.fasttext_supervised(train, test, epochs=())


def test_run_peer_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown peer 'svm'"):
        peers.run_peer("svm")


def ag_news_sample() -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """The committed 300 real AG News rows (4 classes): the first 240 to train, the rest to test."""
    texts, labels = read_zhang_csv(streaming.SAMPLES_DIR / "ag_news_test_head.csv", 4)
    return texts[:240], labels[:240], texts[240:], labels[240:]


def test_logistic_regression_takes_more_than_two_classes() -> None:
    texts, labels, test_texts, test_labels = ag_news_sample()
    result = peers.logistic_regression(texts, labels, test_texts, test_labels, c_values=(16.0,))
    assert result.details["solver"] == "lbfgs"
    assert result.test_accuracy > 0.5  # four classes: chance is about 0.25


def test_mlp_gathered_takes_more_than_two_classes() -> None:
    from utils.vectorize import vectorize_texts

    texts, labels, test_texts, test_labels = ag_news_sample()
    _, x_train, (x_test,), _ = vectorize_texts(texts, labels, test_texts)
    result = peers.mlp_gathered(x_train, labels, x_test, test_labels, epochs=12, batch_size=32,
                                steps_per_execution=1)
    assert result.details["classes"] == 4 and len(result.trace) == 12
    assert result.test_accuracy > 0.5


def test_vw_line_writes_the_label_and_drops_the_reserved_characters() -> None:
    assert peers.vw_line("Great fun: a|b <br />End!", 1, 2) == "1 |t great fun a b end !\n"
    assert peers.vw_line("Bad.", 0, 2) == "-1 |t bad .\n"
    assert peers.vw_line("World news", 3, 4) == "4 |t world news\n"  # classes 0..3 are VW's 1..4


def test_write_vw_file_writes_one_labelled_line_per_document(tmp_path: Path) -> None:
    stream = synthetic_corpus(tmp_path / "docs", 7, seed=1)
    out = tmp_path / "train.vw"
    assert peers.write_vw_file(stream, out, chunk_size=3) == 7
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [line.split(" |t ")[0] for line in lines] == [("1" if y == 1 else "-1") for y in stream.labels]


def test_vowpal_wabbit_learns_with_one_model_per_pass_count(tmp_path: Path) -> None:
    pytest.importorskip("vowpalwabbit")
    train = synthetic_corpus(tmp_path / "train", 300, seed=3)
    test = synthetic_corpus(tmp_path / "test", 100, seed=4)
    result = peers.vowpal_wabbit(train, test, passes=(1, 3), bits=16, workdir=tmp_path)
    assert len(result.trace) == 2 and result.test_accuracy == result.trace[-1][1] > 0.9
    assert result.details["passes"] == [1, 3] and result.seconds == result.trace[-1][0] > 0
    assert not list(tmp_path.glob("vw-*"))  # its files, cache included, are removed
    with pytest.raises(ValueError, match="passes"):
        peers.vowpal_wabbit(train, test, passes=())


def test_vowpal_wabbit_takes_more_than_two_classes(tmp_path: Path) -> None:
    pytest.importorskip("vowpalwabbit")
    folder = tmp_path / "ag"
    folder.mkdir()
    csv = (streaming.SAMPLES_DIR / "ag_news_test_head.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "train.csv").write_text("".join(csv[:240]), encoding="utf-8")
    (folder / "test.csv").write_text("".join(csv[240:]), encoding="utf-8")
    train, test = streaming.ZhangCsvRows(folder / "train.csv", 4), streaming.ZhangCsvRows(folder / "test.csv", 4)
    result = peers.vowpal_wabbit(train, test, passes=(5,), bits=18, workdir=tmp_path)
    assert result.test_accuracy > 0.5  # four classes: chance is about 0.25


def test_missing_package_names_the_package_of_a_peer_that_cannot_run(monkeypatch) -> None:
    monkeypatch.setattr(peers.importlib.util, "find_spec", lambda name: None)
    assert peers.missing_package("vowpal_wabbit") == "the vowpalwabbit package is not installed"
    assert "fasttext-wheel 0.9.2" in peers.missing_package("fasttext")
    assert peers.missing_package("sgd_out_of_core") is None  # scikit-learn is always there


def test_quick_race_writes_one_record_per_contender(tmp_path: Path, imdb_on_disk: None) -> None:
    path = tmp_path / "race.json"
    assert peers.main(["--dataset", "imdb", "--quick", "--json", str(path),
                       "--peers", "sgd_out_of_core", "ours_mlp_gathered", "ours_hashed_fasttext"]) == 0
    race = json.loads(path.read_text())
    assert race["quick"] and race["dataset"] == "imdb" and race["target_accuracy"] == peers.TARGET_ACCURACY
    assert [r["name"] for r in race["records"]] == ["sgd_out_of_core", "ours_mlp_gathered", "ours_hashed_fasttext"]
    assert race["records"][2]["details"]["backend"] == "jax"
    for record, passes in zip(race["records"], (2, 2, 2), strict=True):
        assert len(record["trace"]) == passes and record["peak_rss_mb"] > 100
        assert record["seconds"] == record["trace"][-1][0] and 0.5 < record["test_accuracy"] <= 1
        reached = [t for t, accuracy in record["trace"] if accuracy >= peers.TARGET_ACCURACY]
        assert record["time_to_target_s"] == (reached[0] if reached else None)
    assert race["records"][1]["label"].startswith("ours")
    loaded, results = peers.load_race(path)
    assert loaded == race and [r.name for r in results] == [r["label"] for r in race["records"]]
    assert [list(map(list, r.trace)) for r in results] == [r["trace"] for r in race["records"]]


FOURTEEN_CLASS_PEERS = [("sgd_out_of_core", {"passes": 2}), ("vowpal_wabbit", {"passes": (3,), "bits": 16}),
                        ("fasttext", {"epochs": (10,), "dim": 10, "threads": 1}),
                        ("ours_hashed_fasttext", {"epochs": 6, "hash_size": 2**16, "top_k": 200}),
                        ("ours_hashed_mlp", {"epochs": 6, "hash_size": 2**16, "top_k": 200})]


@pytest.mark.parametrize(("name", "options"), FOURTEEN_CLASS_PEERS, ids=[name for name, _ in FOURTEEN_CLASS_PEERS])
def test_streaming_contenders_take_fourteen_classes(tmp_path: Path, name: str, options: dict) -> None:
    if (reason := peers.missing_package(name)) is not None:
        pytest.skip(reason)
    train = many_class_csv(tmp_path, 14, 1400, seed=0)
    test = many_class_csv(tmp_path, 14, 280, seed=1)
    run = {"sgd_out_of_core": peers.sgd_out_of_core, "vowpal_wabbit": peers.vowpal_wabbit,
           "fasttext": peers.fasttext_supervised}.get(name)
    if run is None:
        result = peers.hashed_keras(train, test, model=name.removeprefix("ours_hashed_"), batch_size=64,
                                    part_size=300, **options)
        assert result.details["classes"] == 14 and len(result.trace) == options["epochs"]
    else:
        result = run(train, test, **options)
    assert result.test_accuracy > 0.9  # chance is 1/14
    assert np.all(np.diff([seconds for seconds, _ in result.trace]) >= 0)  # the clock never runs backwards


def test_in_memory_contenders_take_fourteen_classes(tmp_path: Path) -> None:
    from utils.vectorize import vectorize_texts

    texts, labels = peers.read_all(many_class_csv(tmp_path, 14, 1400, seed=0))
    test_texts, test_labels = peers.read_all(many_class_csv(tmp_path, 14, 280, seed=1))
    result = peers.logistic_regression(texts, labels, test_texts, test_labels, c_values=(16.0,))
    assert result.details["solver"] == "lbfgs" and result.test_accuracy > 0.9
    _, x_train, (x_test,), _ = vectorize_texts(texts, labels, test_texts)
    result = peers.mlp_gathered(x_train, labels, x_test, test_labels, epochs=6, batch_size=64, steps_per_execution=4)
    assert result.details["classes"] == 14 and result.test_accuracy > 0.9


def test_hashed_keras_takes_four_real_classes(tmp_path: Path) -> None:
    csv = (streaming.SAMPLES_DIR / "ag_news_test_head.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "train.csv").write_text("".join(csv[:240]), encoding="utf-8")
    (tmp_path / "test.csv").write_text("".join(csv[240:]), encoding="utf-8")
    train, test = streaming.ZhangCsvRows(tmp_path / "train.csv", 4), streaming.ZhangCsvRows(tmp_path / "test.csv", 4)
    result = peers.hashed_keras(train, test, model="fasttext", epochs=10, batch_size=32, hash_size=2**16,
                                top_k=2000, learning_rate=0.02)
    assert result.test_accuracy > 0.5  # four classes: chance is about 0.25
    with pytest.raises(ValueError, match="model must be one of"):
        peers.hashed_keras(train, test, model="svm")


def test_most_stored_values_bounds_every_batch() -> None:
    import scipy.sparse as sp

    x = sp.random(50, 40, density=0.2, format="csr", random_state=0)  # synthetic
    bound = peers.most_stored_values(x, 8)
    rng = np.random.default_rng(0)
    assert all(x[rng.choice(50, 8, replace=False)].nnz <= bound for _ in range(200))
    assert bound == np.sort(np.diff(x.indptr))[-8:].sum()


def test_one_shape_batches_pad_the_last_batch_with_rows_of_weight_zero() -> None:
    import scipy.sparse as sp

    x = sp.random(50, 40, density=0.2, format="csr", random_state=1, dtype=np.float32)  # synthetic
    y = np.arange(50, dtype=np.float32) % 2 + 1  # no label 0, so that padded labels are told apart
    bound = peers.most_stored_values(x, 16)
    batches = list(peers.one_shape_batches(((x[i:i + 16], y[i:i + 16]) for i in range(0, 50, 16)), 16, bound))
    assert [(xb.shape, xb.nse, yb.shape, wb.shape) for xb, yb, wb in batches] == [((16, 40), bound, (16,), (16,))] * 4
    last_x, last_y, last_weight = batches[-1]
    assert last_weight.tolist() == [1, 1] + [0] * 14
    assert last_y.tolist() == y[48:].tolist() + [0] * 14
    np.testing.assert_array_equal(np.asarray(last_x.todense()), np.vstack([x[48:].toarray(), np.zeros((14, 40))]))
    assert sum(float(wb.sum()) for _, _, wb in batches) == 50


def test_predicted_classes_read_a_sigmoid_unit_or_a_softmax() -> None:
    assert peers.predicted_classes(np.array([[0.2], [0.7], [0.5]])).tolist() == [0, 1, 0]
    assert peers.predicted_classes(np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])).tolist() == [1, 0]


def test_compile_ahead_changes_no_weight_and_overlap_changes_no_result(tmp_path: Path) -> None:
    """On JAX (a fresh process): compiling ahead leaves the weights and Adam's state as they were, and the route
    with the build and compilations in a background thread scores exactly what it scores without."""
    many_class_csv(tmp_path, 3, 300, seed=0)
    many_class_csv(tmp_path, 3, 70, seed=1)
    code = ("import json, os; os.environ['KERAS_BACKEND'] = 'jax'\n"
            "from pathlib import Path\nimport numpy as np\nimport scipy.sparse as sp\n"
            "from bench import peers\nfrom utils import models, streaming\n"
            "x = sp.random(100, 30, density=0.3, format='csr', random_state=0, dtype=np.float32)\n"
            "y = peers.model_labels(np.arange(100) % 2, 2)\n"
            "network = models.build_mlp(30, 2, sparse_input=True)\n"
            "network.fit(peers.one_shape_batches([(x[:32], y[:32])], 32, 300), steps_per_epoch=1, verbose=0)\n"
            "before = [v.numpy().copy() for v in network.variables + network.optimizer.variables]\n"
            "batch = next(peers.one_shape_batches([(x[32:64], y[32:64])], 32, 300))\n"
            "peers.compile_ahead(network, batch, train=True)\n"
            "peers.compile_ahead(network, batch, train=False)\n"
            "after = [v.numpy() for v in network.variables + network.optimizer.variables]\n"
            "print(len(before) == len(after) and all(np.array_equal(b, a) for b, a in zip(before, after)))\n"
            f"train, test = (streaming.ZhangCsvRows(Path({str(tmp_path)!r}) / f'{{seed}}.csv', 3) for seed in (0, 1))\n"
            "results = [peers.hashed_keras(train, test, model='mlp', epochs=2, batch_size=32, hash_size=2**12, "
            "top_k=50, overlap=overlap) for overlap in (True, False)]\n"
            "print(json.dumps([[r.trace[0][1] for r in results], [sorted(r.details['stages']) for r in results]]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT, check=False)
    lines = done.stdout.strip().splitlines()
    assert len(lines) >= 2 and lines[-2] == "True", done.stdout[-2000:] + done.stderr[-2000:]
    accuracies, stages = json.loads(lines[-1])
    assert accuracies[0] == accuracies[1] > 0.5  # three classes: chance is about 0.33
    assert "wait_for_model" in stages[0] and "build_model" in stages[1]


def test_race_streams_reject_an_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'yelp'"):
        peers.race_streams("yelp")
    with pytest.raises(ValueError, match="no stand-in is called 'imdb'"):
        peers.ensure_standin("imdb")


def test_hashed_route_on_jax_loads_no_tensorflow(tmp_path: Path) -> None:
    many_class_csv(tmp_path, 3, 300, seed=0)
    many_class_csv(tmp_path, 3, 60, seed=1)
    code = ("import os, sys; os.environ['KERAS_BACKEND'] = 'jax'\n"
            "from pathlib import Path\nfrom bench import peers\nfrom utils import streaming\n"
            f"train, test = (streaming.ZhangCsvRows(Path({str(tmp_path)!r}) / f'{{seed}}.csv', 3) for seed in (0, 1))\n"
            "result = peers.hashed_keras(train, test, model='fasttext', epochs=1, hash_size=2**12, top_k=50)\n"
            "print(result.details['backend'], 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT, check=False)
    assert done.stdout.split()[-2:] == ["jax", "False"], done.stdout[-2000:] + done.stderr[-2000:]
