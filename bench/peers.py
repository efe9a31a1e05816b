"""The race of chapters 07 and 11: the tools a practitioner would pick, and the series' routes, one clock.

TensorFlow, Keras, scikit-learn's estimators, fastText and Vowpal Wabbit are
imported inside the contender that uses them: each contender runs in a fresh
process whose peak memory (its worker processes included) is reported, and a
contender that does not use TensorFlow must not pay for loading it.

Each contender trains on the same documents and is scored on the same test set,
and returns a :class:`PeerResult`: final test accuracy, its seconds, peak memory
and an accuracy-over-time *trace* (test accuracy after each pass or epoch, at the
seconds of the race's :class:`Clock`: from the start of the work to that test
score, files, features, imports and compilation included), from which
:func:`time_to_reach` reads "time to reach 0.88 test accuracy". The trace looks
at the test set after every pass for reporting only; nothing is chosen from it.

* :func:`sgd_out_of_core` — scikit-learn's out-of-core recipe:
  ``HashingVectorizer`` + ``SGDClassifier.partial_fit`` (averaged) over chunks
  streamed from disk, a few passes.
* :func:`logistic_regression` — an in-memory linear baseline (liblinear for two
  classes, lbfgs for more) on the tf-idf features of
  :class:`utils.vectorize.NgramVectorizer`, ``C`` chosen on a validation part of
  the training data.
* :func:`fasttext_supervised` — fastText (Joulin et al. 2016) from a training
  file on disk. ``fasttext-wheel`` 0.9.2's ``predict`` fails under NumPy 2
  (``np.array(..., copy=False)``), so accuracy comes from its own
  ``model.test(path)`` (precision at 1, which is accuracy for one label per document).
* :func:`vowpal_wabbit` — Vowpal Wabbit (``vowpalwabbit``): hashed word 1–2-grams
  (``--ngram``, ``-b`` bits), a few passes over its own cache file, logistic
  loss (one-against-all for more than two classes).
* :func:`mlp_gathered` — the series' route of chapter 04 (sparse-input MLP,
  ``tf.data`` gathering CSR rows, ``steps_per_execution=16``).
* :func:`hashed_keras` — the series' fast route of chapter 11: hashed tf-idf
  counted in worker processes, then the MLP or fastText's architecture on the
  JAX backend.

:func:`run_isolated` runs one contender, data loading included, in a fresh process
(:func:`utils.processes.run_fresh`) so that its peak memory is its own. As a script,
every peer and every route of the series (the names that start with ``ours``)
runs that way on the same split, with the same clock, into one JSON file::

    python bench/peers.py --dataset imdb --quick --json /tmp/peers.json              # 2,000 documents: a CI check
    python bench/peers.py --dataset imdb --repeats 3 --json results/peers_imdb.json  # all 25,000 / 25,000
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp

from utils import streaming
from utils.hashed_tfidf import HASH_SIZE
from utils.memory import MB, MemoryMonitor
from utils.processes import run_fresh, write_json
from utils.runtime import load_average, machine_summary, package_versions, quiet_tensorflow
from utils.vectorize import TOP_K, NgramVectorizer, vectorize_texts

#: Test accuracy whose time to reach is reported.
TARGET_ACCURACY = 0.88
#: RSS samples kept per peer (thinned evenly, the peak always kept).
MEMORY_POINTS = 300


@dataclass
class PeerResult:
    """What one peer measured.

    Attributes:
        name: the peer.
        test_accuracy: test accuracy of the final model.
        seconds: the final model's seconds on the race's :class:`Clock` (the last trace point).
        trace: ``(seconds on the clock, test accuracy)`` after each pass / epoch.
        peak_rss_mb: peak memory of the process and its workers (filled in by :func:`run_isolated`; 0 until then).
        memory: ``(seconds, RSS in MB)`` samples of the whole process, thinned (filled in by :func:`run_isolated`).
        details: settings and anything else worth printing (e.g. the chosen ``C``).
    """

    name: str
    test_accuracy: float
    seconds: float
    trace: list[tuple[float, float]]
    peak_rss_mb: float = 0.0
    memory: list[tuple[float, float]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def time_to_reach(trace: Sequence[tuple[float, float]], target: float = TARGET_ACCURACY) -> float | None:
    """Return the seconds of the first trace point with accuracy >= ``target``, or ``None`` if none reaches it."""
    for seconds, accuracy in trace:
        if accuracy >= target:
            return seconds
    return None


class Clock:
    """The one clock of the race: seconds of a contender's work, from its start to a test score.

    A trace point's seconds run from the start of the contender's work in its
    process (listing and reading the documents included; the Python start-up
    and the import of this module, the same for everyone, excluded) to the
    moment that point's test score is known, writing files, building features
    and importing libraries included: the time the contender would have taken
    had it stopped there. Scoring is reporting, so the time spent scoring a
    point is left out of the later points; instead every point is charged the
    cost of the *first* scoring, which includes what only the first pays
    (preparing the test set, compiling the evaluation) and which a run stopped
    at any point would pay. For contenders whose points are separate models
    (fastText, Vowpal Wabbit), the earlier models' runs are left out too
    (:meth:`counted_once`).
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.excluded = 0.0
        self.first_score_seconds: float | None = None

    def elapsed(self) -> float:
        """Seconds since the start, less the excluded intervals."""
        return time.perf_counter() - self.start - self.excluded

    def score(self, scorer: Callable[[], float]) -> tuple[float, float]:
        """Call ``scorer`` (the test accuracy of the model as it is now); return ``(seconds, accuracy)``.

        The seconds are the work so far, scoring excluded, plus the first scoring's seconds.
        """
        started = time.perf_counter()
        accuracy = float(scorer())
        took = time.perf_counter() - started
        self.excluded += took
        if self.first_score_seconds is None:
            self.first_score_seconds = took
        return self.elapsed() + self.first_score_seconds, accuracy

    @contextmanager
    def counted_once(self) -> Iterator[None]:
        """Count the time of the block for the points scored inside it only (a separate model's whole run)."""
        started, excluded = time.perf_counter(), self.excluded
        yield
        self.excluded = excluded + time.perf_counter() - started


def _hashing_vectorizer(hash_size: int):
    """The out-of-core recipe's features: hashed word 1-2 grams, l2-normalised counts."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=hash_size, ngram_range=(1, 2), alternate_sign=False,
                             decode_error="replace", dtype=np.float32)


def sgd_out_of_core(train: streaming.DocumentStream, test: streaming.DocumentStream, *, passes: int = 3,
                    chunk_size: int = 1000, hash_size: int = 2**20, alpha: float = 1e-5, average: bool = True,
                    seed: int = 0, clock: Clock | None = None) -> PeerResult:
    """Train a linear SVM with ``SGDClassifier.partial_fit`` on hashed n-grams streamed from disk.

    Args:
        train, test: document streams (e.g. :class:`utils.streaming.DocumentFiles`).
        passes: passes over the training stream; a :class:`DocumentFiles` stream is reshuffled every pass.
        chunk_size: documents hashed and fitted at a time.
        hash_size: hashed columns.
        alpha: the L2 penalty of ``SGDClassifier``.
        average: averaged SGD (the mean of the weights over all updates), which keeps the
            result from jumping with the last chunks' updates.
        seed: seed of the classifier and of the reshuffling.
        clock: the race's clock (:class:`Clock`); a new one started here by default.

    Returns:
        A :class:`PeerResult` whose trace has one point per pass (the test set hashed and scored after each).
    """
    from sklearn.linear_model import SGDClassifier

    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    clock = clock or Clock()
    hasher = _hashing_vectorizer(hash_size)
    classifier = SGDClassifier(loss="hinge", alpha=alpha, average=average, random_state=seed)
    classes = np.arange(train.num_classes)
    trace = []

    def predict(chunk: list[str]) -> np.ndarray:
        return classifier.predict(hasher.transform(chunk))

    for number in range(passes):
        stream = train.sample(len(train), seed + number) if isinstance(train, streaming.DocumentFiles) else train
        for texts, labels in stream.chunks(chunk_size):
            classifier.partial_fit(hasher.transform(texts), labels, classes=classes)
        trace.append(clock.score(lambda: _streamed_accuracy(predict, test, chunk_size)))
    return PeerResult("sklearn HashingVectorizer + SGD (out of core)", trace[-1][1], trace[-1][0], trace,
                      details={"passes": passes, "hash_size": hash_size, "alpha": alpha, "average": average,
                               "loss": "hinge"})


def _streamed_accuracy(predict: Callable[[list[str]], np.ndarray], test: streaming.DocumentStream,
                       chunk_size: int) -> float:
    """Return the accuracy of ``predict`` over ``test``, read chunk by chunk."""
    correct = total = 0
    for texts, labels in test.chunks(chunk_size):
        correct += int(np.sum(predict(texts) == labels))
        total += len(labels)
    return correct / total


def logistic_regression(train_texts: Sequence[str], y_train: np.ndarray, test_texts: Sequence[str],
                        y_test: np.ndarray, *, c_values: Sequence[float] = (1.0, 4.0, 16.0, 64.0),
                        validation_fraction: float = 0.2, seed: int = 0, clock: Clock | None = None) -> PeerResult:
    """Fit ``LogisticRegression`` in memory on tf-idf n-grams, choosing ``C`` on held-out training rows.

    Two classes use the liblinear solver; more use lbfgs with a multinomial
    loss (scikit-learn 1.9's liblinear refuses three classes or more).

    ``NgramVectorizer`` is fitted on the training texts outside a seeded
    ``validation_fraction`` of them (its feature selection reads labels, so the
    validation rows must stay out of it); each ``C`` is fitted on those rows and
    scored on the validation rows; the best ``C`` is refitted on **all**
    training texts (with the same vocabulary) and scored on the test set once.

    Args:
        train_texts, y_train, test_texts, y_test: texts and integer labels.
        c_values: inverse regularisation strengths tried.
        validation_fraction: share of the training texts held out to choose ``C``.
        seed: seed of that split.
        clock: the race's clock (:class:`Clock`); a new one started here by default.

    Returns:
        A :class:`PeerResult` with a one-point trace: the whole time, vectorizing and choosing ``C`` included.
    """
    from sklearn.linear_model import LogisticRegression

    if not c_values:
        raise ValueError("c_values must not be empty")
    if len(train_texts) != len(y_train):
        raise ValueError(f"{len(train_texts)} training texts but {len(y_train)} labels")
    clock = clock or Clock()
    order = np.random.default_rng(seed).permutation(len(train_texts))
    cut = int(len(order) * (1 - validation_fraction))
    fit_rows, val_rows = np.sort(order[:cut]), np.sort(order[cut:])
    start = time.perf_counter()
    vectorizer = NgramVectorizer()
    x_fit = vectorizer.fit_transform([train_texts[i] for i in fit_rows], y_train[fit_rows])
    x_val = vectorizer.transform([train_texts[i] for i in val_rows])
    feature_seconds = time.perf_counter() - start
    solver = {"solver": "liblinear"} if len(np.unique(y_train)) == 2 else {"solver": "lbfgs", "max_iter": 1000}
    scores = {}
    for c in c_values:
        model = LogisticRegression(C=c, **solver).fit(x_fit, y_train[fit_rows])
        scores[c] = float(model.score(x_val, y_train[val_rows]))
    best = max(scores, key=scores.get)
    x_train = sp.vstack([x_fit, x_val], format="csr")
    model = LogisticRegression(C=best, **solver).fit(x_train, np.concatenate([y_train[fit_rows], y_train[val_rows]]))
    seconds, accuracy = clock.score(lambda: model.score(vectorizer.transform(test_texts), y_test))
    return PeerResult("sklearn LogisticRegression (tf-idf, in memory)", accuracy, seconds, [(seconds, accuracy)],
                      details={"C": best, "validation_accuracy": scores, "feature_seconds": round(feature_seconds, 1),
                               "solver": solver["solver"]})


_TOKEN = re.compile(r"[a-z0-9']+|[^a-z0-9'\s]")


def fasttext_line(text: str) -> str:
    """Return ``text`` as one fastText input line: lower case, HTML breaks removed, punctuation split off."""
    return " ".join(_TOKEN.findall(text.replace("<br />", " ").lower()))


def write_lines(stream: streaming.DocumentStream, path: Path, line: Callable[[str, int], str],
                chunk_size: int = 1000) -> int:
    """Write ``line(text, label)`` for every document of ``stream`` to ``path``, chunk by chunk; return the count.

    The training files of fastText and Vowpal Wabbit are written this way: one document per line, never the
    whole stream in memory.
    """
    lines = 0
    with open(path, "w", encoding="utf-8") as out:
        for texts, labels in stream.chunks(chunk_size):
            out.writelines(line(text, label) for text, label in zip(texts, labels.tolist(), strict=True))
            lines += len(texts)
    return lines


def write_fasttext_file(stream: streaming.DocumentStream, path: Path, chunk_size: int = 1000) -> int:
    """Write ``stream`` to ``path`` as ``__label__<k> <tokens>`` lines, chunk by chunk; return the line count."""
    return write_lines(stream, path, lambda text, label: f"__label__{label} {fasttext_line(text)}\n", chunk_size)


def fasttext_supervised(train: streaming.DocumentStream, test: streaming.DocumentStream, *,
                        epochs: Sequence[int] = (1, 2, 3, 5), word_ngrams: int = 2, lr: float = 0.5, dim: int = 50,
                        threads: int = 2, seed: int = 0, workdir: Path | None = None,
                        clock: Clock | None = None) -> PeerResult:
    """Train fastText's supervised classifier once per entry of ``epochs``; the last one is the result.

    fastText trains a whole run of ``epoch`` passes in one call, so each trace
    point is a separate model trained for that many epochs (its time on the
    :class:`Clock`: writing the training and test files, that run and its
    test). With ``threads`` > 1 fastText is not bit-for-bit reproducible.

    Returns:
        A :class:`PeerResult` with one trace point per entry of ``epochs``.
    """
    import fasttext

    if not epochs or min(epochs) < 1:
        raise ValueError(f"epochs must be a non-empty list of counts >= 1, got {epochs}")
    clock = clock or Clock()
    with tempfile.TemporaryDirectory(prefix="fasttext-", dir=workdir) as tmp:
        start = time.perf_counter()
        train_path = Path(tmp) / "train.txt"
        write_fasttext_file(train.sample(len(train), seed) if isinstance(train, streaming.DocumentFiles) else train,
                            train_path)
        file_seconds = time.perf_counter() - start
        test_path = Path(tmp) / "test.txt"
        test_file_seconds = 0.0

        def test_accuracy() -> float:
            """Precision at 1 of ``model`` on the test file (written by the first call)."""
            nonlocal test_file_seconds
            if not test_path.exists():
                start = time.perf_counter()
                write_fasttext_file(test, test_path)
                test_file_seconds = time.perf_counter() - start
            return model.test(str(test_path))[1]

        trace = []
        for count in epochs:
            with clock.counted_once():
                model = fasttext.train_supervised(str(train_path), epoch=count, wordNgrams=word_ngrams, lr=lr,
                                                  dim=dim, thread=threads, seed=seed, verbose=0)
                trace.append(clock.score(test_accuracy))
    return PeerResult("fastText supervised", trace[-1][1], trace[-1][0], trace,
                      details={"epochs": list(epochs), "wordNgrams": word_ngrams, "lr": lr, "dim": dim,
                               "threads": threads, "file_seconds": round(file_seconds, 1),
                               "test_file_seconds": round(test_file_seconds, 1)})


def vw_line(text: str, label: int, num_classes: int) -> str:
    """Return one Vowpal Wabbit input line: the label (-1/1 for two classes, 1..k for more), then namespace ``t``.

    The tokens are :func:`fasttext_line`'s; ``:`` and ``|``, which the VW format reserves, are dropped.
    """
    target = (1 if label == 1 else -1) if num_classes == 2 else label + 1
    tokens = [token for token in fasttext_line(text).split() if token not in (":", "|")]
    return f"{target} |t {' '.join(tokens)}\n"


def write_vw_file(stream: streaming.DocumentStream, path: Path, chunk_size: int = 1000) -> int:
    """Write ``stream`` to ``path`` in Vowpal Wabbit's text format (:func:`vw_line`); return the line count."""
    return write_lines(stream, path, lambda text, label: vw_line(text, label, stream.num_classes), chunk_size)


def vowpal_wabbit(train: streaming.DocumentStream, test: streaming.DocumentStream, *,
                  passes: Sequence[int] = (1, 2, 3), bits: int = 20, ngram: int = 2, seed: int = 0,
                  workdir: Path | None = None, clock: Clock | None = None) -> PeerResult:
    """Train Vowpal Wabbit once per entry of ``passes`` from a file on disk; the last one is the result.

    Each model runs VW's own driver on the training file: it parses it into a
    cache file (``--cache_file``, rebuilt by every model so that each time is a
    whole run), then makes ``passes`` passes over the cache (``--holdout_off``:
    every row trains). Features are hashed word 1..``ngram``-grams into
    ``2**bits`` weights; the loss is logistic, with one-against-all
    (``--oaa``) for more than two classes. Each trace point's time on the
    :class:`Clock` is writing the training and test files, that model's run and
    its test (``-t``).

    Returns:
        A :class:`PeerResult` with one trace point per entry of ``passes``.
    """
    from vowpalwabbit import Workspace

    if not passes or min(passes) < 1:
        raise ValueError(f"passes must be a non-empty list of counts >= 1, got {passes}")
    classes = [] if train.num_classes == 2 else ["--oaa", str(train.num_classes)]
    quiet = ["--quiet", "--random_seed", str(seed)]
    clock = clock or Clock()
    with tempfile.TemporaryDirectory(prefix="vw-", dir=workdir) as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        write_vw_file(train.sample(len(train), seed) if isinstance(train, streaming.DocumentFiles) else train,
                      folder / "train.vw")
        file_seconds = time.perf_counter() - start
        test_file_seconds = 0.0
        truth = np.array([])

        def test_accuracy() -> float:
            """Score ``model.vw`` on the test file (written by the first call) with VW's own driver."""
            nonlocal test_file_seconds, truth
            if not truth.size:
                start = time.perf_counter()
                write_vw_file(test, folder / "test.vw")
                truth = np.array([int(line.split(" ", 1)[0]) for line in open(folder / "test.vw", encoding="utf-8")])
                test_file_seconds = time.perf_counter() - start
            Workspace(arg_list=["-t", "-i", str(folder / "model.vw"), "-d", str(folder / "test.vw"), "-p",
                                str(folder / "predictions.txt"), *quiet]).finish()
            predicted = np.loadtxt(folder / "predictions.txt", usecols=0, ndmin=1)
            if train.num_classes == 2:
                predicted = np.where(predicted > 0, 1, -1)
            return float(np.mean(predicted == truth))

        trace = []
        for count in passes:
            with clock.counted_once():
                Workspace(arg_list=["-d", str(folder / "train.vw"), "--cache_file", str(folder / "train.cache"), "-k",
                                    "--passes", str(count), "--holdout_off", "-b", str(bits), "--ngram",
                                    f"t{ngram}", "--loss_function", "logistic", "-f", str(folder / "model.vw"),
                                    *classes, *quiet]).finish()
                trace.append(clock.score(test_accuracy))
    return PeerResult("Vowpal Wabbit (hashed 1-2-grams, cache file)", trace[-1][1], trace[-1][0], trace,
                      details={"passes": list(passes), "bits": bits, "ngram": ngram, "loss": "logistic",
                               "file_seconds": round(file_seconds, 1),
                               "test_file_seconds": round(test_file_seconds, 1)})


def model_labels(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Return labels as the guide's output layer takes them: 0/1 floats (sigmoid unit) or class indices (softmax)."""
    return y.astype(np.float32) if num_classes == 2 else y.astype(np.int64)


def predicted_classes(scores: np.ndarray) -> np.ndarray:
    """Return the class each row of the guide's output layer picks: its sigmoid unit above 0.5, or its softmax's
    largest probability."""
    return (scores[:, 0] > 0.5).astype(int) if scores.shape[1] == 1 else scores.argmax(axis=1)


def _score_each_epoch(clock: Clock, trace: list[tuple[float, float]], test_accuracy: Callable[[], float],
                      epoch_seconds: list[float] | None = None):
    """Return a Keras callback that appends ``clock.score(test_accuracy)`` to ``trace`` after every epoch
    (and each epoch's training seconds to ``epoch_seconds``, if given)."""
    import keras

    class ScoreEachEpoch(keras.callbacks.Callback):
        """After every epoch, the test accuracy and the seconds on the race's clock."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if epoch_seconds is not None:
                epoch_seconds.append(round(time.perf_counter() - self.start, 2))
            trace.append(clock.score(test_accuracy))

    return ScoreEachEpoch()


def mlp_gathered(x_train: sp.csr_matrix, y_train: np.ndarray, x_test: sp.csr_matrix, y_test: np.ndarray, *,
                 epochs: int = 4, batch_size: int = 128, steps_per_execution: int = 16,
                 feature_seconds: float = 0.0, seed: int = 0, clock: Clock | None = None) -> PeerResult:
    """Train the guide's MLP with chapter 04's best pipeline, scoring the test set after every epoch.

    Args:
        x_train, y_train, x_test, y_test: features and integer class labels (0..classes-1; two classes get the
            guide's sigmoid unit, more its softmax).
        epochs: training epochs (fixed; chapter 04 found 4 a good count for IMDB).
        batch_size, steps_per_execution: as in ``bench/pipelines.py``'s ``tfdata_gather_spe16``.
        feature_seconds: time it took to build the features (reported in ``details``).
        seed: seed of the weights and the shuffling.
        clock: the race's clock (:class:`Clock`), started before the features were built; a new one by default.

    Returns:
        A :class:`PeerResult` with one trace point per epoch.
    """
    from utils.models import build_mlp
    from utils.runtime import set_seed
    from utils.tfdata import gathered_dataset

    clock = clock or Clock()
    num_classes = max(2, int(max(y_train.max(), y_test.max())) + 1)
    set_seed(seed)
    model = build_mlp(x_train.shape[1], num_classes, sparse_input=True, steps_per_execution=steps_per_execution)
    dataset = gathered_dataset(x_train, model_labels(y_train, num_classes), batch_size, seed=seed)
    trace: list[tuple[float, float]] = []

    def test_accuracy() -> float:
        return model.evaluate(x_test, model_labels(y_test, num_classes), batch_size=1024, verbose=0,
                              return_dict=True)["accuracy"]

    model.fit(dataset, epochs=epochs, shuffle=False, verbose=0,  # the dataset shuffles
              callbacks=[_score_each_epoch(clock, trace, test_accuracy)])
    return PeerResult("ours: MLP, tf.data gather, steps_per_execution=16", trace[-1][1], trace[-1][0], trace,
                      details={"epochs": epochs, "batch_size": batch_size, "steps_per_execution": steps_per_execution,
                               "feature_seconds": round(feature_seconds, 1), "classes": num_classes})


#: Rows per batch when a route of the series scores the test set.
TEST_BATCH_SIZE = 1024


def most_stored_values(x: sp.csr_matrix, rows: int) -> int:
    """Return the most stored values any ``rows`` rows of ``x`` can hold: the sum of its ``rows`` fullest rows.

    Padding every batch to it gives JAX one number of stored values to compile for (:func:`one_shape_batches`).
    """
    per_row = np.diff(x.indptr)
    return max(1, int(np.sort(per_row)[-rows:].sum()))


def one_shape_batches(batches: Iterable[tuple[sp.csr_matrix, np.ndarray]], rows: int, stored_values: int
                      ) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    """Yield every ``(x, y)`` batch as ``(x, y, sample_weight)`` of one shape, so that JAX compiles one step for all.

    ``x`` becomes a ``BCOO`` of ``rows`` rows holding a multiple of ``stored_values`` values
    (:func:`utils.sparse.to_jax_sparse`; with :func:`most_stored_values` every batch holds exactly that many). A
    shorter batch (the last of an epoch) gets empty rows of label 0 and weight 0: they add nothing to the loss's
    gradient, and the step is the one already compiled instead of a second compilation. (Keras' ``metrics``
    ignore sample weights, so an accuracy must leave the padded rows' predictions out, as ``hashed_keras`` does.)

    Args:
        batches: ``(x, y)`` pairs, ``x`` a CSR batch of at most ``rows`` rows (:func:`utils.batching.batch_generator`).
        rows: rows of every batch.
        stored_values: stored values per batch are padded to a multiple of this.
    """
    from utils.sparse import to_jax_sparse

    for x, y in batches:
        weight = np.ones(rows, np.float32)
        if len(y) < rows:
            weight[len(y):] = 0
            indptr = np.concatenate([x.indptr, np.full(rows - len(y), x.indptr[-1])])
            x = sp.csr_matrix((x.data, x.indices, indptr), shape=(rows, x.shape[1]))
            y = np.concatenate([y, np.zeros((rows - len(y), *y.shape[1:]), y.dtype)])
        yield to_jax_sparse(x, stored_values), y, weight


def top_k_wide(x: sp.csr_matrix, top_k: int) -> sp.csr_matrix:
    """Return ``x`` with ``top_k`` columns: where fewer columns passed ``min_df``, the missing ones are empty."""
    return x if x.shape[1] == top_k else sp.csr_matrix((x.data, x.indices, x.indptr), shape=(x.shape[0], top_k))


#: The models :func:`hashed_keras` trains: the guide's MLP, and fastText's architecture.
KERAS_MODELS = ("mlp", "fasttext")


def compile_ahead(network: Any, batch: tuple[Any, np.ndarray, np.ndarray], *, train: bool) -> None:
    """Compile ``network``'s train step (``train``) or predict step for the shapes of ``batch``, changing no weight.

    JAX compiles a step the first time it meets a shape; run here (in a background thread), the compilation
    overlaps other work instead of stalling the first epoch or the first scoring. The train step runs once
    with every sample weight set to 0, so the gradient is 0; the model's and the optimizer's variables (the
    weights, Adam's moments and step count, dropout's random state) are then set back to their values before
    (moments the optimizer creates in this first step start at 0 and stay there). The call goes through
    ``fit`` and ``predict`` themselves, so that the later calls find the very function compiled here.

    Args:
        network: a compiled Keras model on JAX.
        batch: ``(x, y, sample_weight)`` of the shapes to compile for (:func:`one_shape_batches`).
        train: the train step; otherwise the predict step.
    """
    x, y, weight = batch
    if train:
        saved = [(variable, variable.numpy()) for variable in network.variables + network.optimizer.variables]
        network.fit((b for b in [(x, y, np.zeros_like(weight))]), steps_per_epoch=1, epochs=1, verbose=0,
                    shuffle=False)
        for variable, value in saved:
            variable.assign(value)
    else:
        network.predict((b for b in [batch]), steps=1, verbose=0)


def hashed_keras(train: streaming.DocumentStream, test: streaming.DocumentStream, *, model: str = "mlp",
                 epochs: int = 3, batch_size: int = 128, workers: int = 2, part_size: int = 1000,
                 top_k: int = TOP_K, hash_size: int = HASH_SIZE, binary: bool = True, nse_multiple: int | None = None,
                 learning_rate: float | None = None, steps_per_execution: int = 1, jit_compile: bool | None = None,
                 pad_last: bool = True, overlap: bool = True, seed: int = 0, clock: Clock | None = None
                 ) -> PeerResult:
    """The series' fast route: hashed tf-idf n-grams counted in worker processes, a Keras model on the running backend.

    1. Both splits go to ``workers`` processes at once (:func:`utils.hashed_tfidf.submit_counts`): they read
       and hash the documents while this process imports Keras; no vocabulary is fitted.
    2. idf, ``min_df`` and the ``top_k`` columns by ``f_classif``'s F come from the training counts in memory
       (:meth:`utils.hashed_tfidf.HashedTfidf.fit_transform_parts`): the guide's features, hashed. Then the
       test counts get the same columns.
    3. The model (``"mlp"``: :func:`utils.models.build_mlp`; ``"fasttext"``: :func:`utils.models.build_fasttext`)
       trains from a generator of sparse batches in the backend's own format (on JAX, ``BCOO`` batches of one
       shape, :func:`one_shape_batches`, so that the train step and the predict step are compiled once each).
    4. With ``overlap``, a background thread builds the model while this thread works on the features, and
       on JAX compiles both steps (:func:`compile_ahead`) as soon as their shapes are known: the
       compilers release Python's lock, so they run beside the feature work on the second core.

    Args:
        train, test: document streams.
        model: one of :data:`KERAS_MODELS`.
        epochs, batch_size: training epochs and rows per batch.
        workers, part_size: counting processes, and documents per piece of work handed to one.
        top_k, hash_size: kept columns, and the hash space they are chosen from.
        binary: tf 0 or 1 rather than raw counts (chapter 11: more accurate on IMDB).
        nse_multiple: on JAX, stored values per batch are padded to a multiple of this; ``None``: to
            :func:`most_stored_values`, one shape for every batch (one compilation).
        learning_rate: Adam's; ``None``: the model's default.
        steps_per_execution: train steps per call into the compiled function.
        jit_compile: set ``model.jit_compile`` (XLA on TensorFlow; JAX always compiles); ``None``: Keras' "auto".
        pad_last: on JAX, pad the last, shorter batch of an epoch (and of the test set) to the others' shape
            with rows of weight 0; ``False``: leave it shorter, a second shape (and compilation) of each step.
        overlap: build (and on JAX with ``pad_last``, compile) in a background thread; ``False``: build here
            after the import, compile in the first epoch and the first scoring.
        seed: seed of the weights and the shuffling.
        clock: the race's clock (:class:`Clock`); a new one started here by default.

    Returns:
        A :class:`PeerResult` with one trace point per epoch; ``details`` has the seconds of each stage of this
        thread (``wait_for_model``: for the background thread to finish).
    """
    from utils.hashed_tfidf import HashedTfidf, counting_pool, gather_counts, submit_counts

    if model not in KERAS_MODELS:
        raise ValueError(f"model must be one of {KERAS_MODELS}, got {model!r}")
    clock = clock or Clock()
    stages: dict[str, float] = {}

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        stages[name] = round(time.perf_counter() - started, 2)

    features = HashedTfidf(train.num_classes, hash_size=hash_size, top_k=top_k, binary=binary)
    with counting_pool(workers) as pool, ThreadPoolExecutor(1, thread_name_prefix="build") as background:
        train_parts = submit_counts(pool, features, train, part_size=part_size)
        test_parts = submit_counts(pool, features, test, part_size=part_size)
        with stage("import_keras"):  # while the workers count
            import keras

            from utils import batching, models
            from utils.runtime import set_seed
            from utils.sparse import to_jax_sparse
        on_jax = keras.backend.backend() == "jax"

        def build_network() -> keras.Model:
            """The model: its width is ``top_k``, known before any counting."""
            set_seed(seed)
            options = {} if learning_rate is None else {"learning_rate": learning_rate}
            build = models.build_mlp if model == "mlp" else models.build_fasttext
            network = build(top_k, train.num_classes, sparse_input=True, steps_per_execution=steps_per_execution,
                            **options)
            if jit_compile is not None:
                network.jit_compile = jit_compile
            return network

        def backend_batches(x: sp.csr_matrix, y: np.ndarray, rows: int, shuffle: bool) -> Iterator:
            """A generator of batches: scipy CSR ``(x, y)`` (TensorFlow converts them); on JAX, padded ``BCOO``."""
            batches = batching.batch_generator(x, model_labels(y, train.num_classes), rows, shuffle=shuffle,
                                               seed=seed, sparse=True)
            if not on_jax:
                return batches
            multiple = nse_multiple or most_stored_values(x, rows)
            if pad_last:
                return one_shape_batches(batches, rows, multiple)
            return ((to_jax_sparse(xb, multiple), yb) for xb, yb in batches)

        if overlap:
            building = background.submit(build_network)
        else:
            with stage("build_model"):
                network = build_network()
        with stage("wait_for_counts"):
            parts = gather_counts(train_parts)
        with stage("idf_select_transform"):
            x_train, y_train = features.fit_transform_parts(parts)
            x_train = top_k_wide(x_train, top_k)
            del parts
        ahead = overlap and on_jax and pad_last

        def compile_when_built(batch: tuple[Any, np.ndarray, np.ndarray], train: bool) -> None:
            compile_ahead(building.result(), batch, train=train)

        compiled = []
        if ahead:
            compiled.append(background.submit(compile_when_built,
                                              next(backend_batches(x_train, y_train, batch_size, False)), True))
        with stage("test_features"):
            x_test, y_test = features.transform_parts(gather_counts(test_parts))
            x_test = top_k_wide(x_test, top_k)
        if ahead:
            compiled.append(background.submit(compile_when_built,
                                              next(backend_batches(x_test, y_test, TEST_BATCH_SIZE, False)), False))
        if overlap:
            with stage("wait_for_model"):
                network = building.result()
                for step in compiled:
                    step.result()

        def test_accuracy() -> float:
            """Accuracy on the test set; the predictions of padded rows (the last ones) are left out."""
            scores = network.predict(backend_batches(x_test, y_test, TEST_BATCH_SIZE, False), verbose=0,
                                     steps=batching.steps_per_epoch(len(y_test), TEST_BATCH_SIZE))[:len(y_test)]
            return float(np.mean(predicted_classes(scores) == y_test))

        trace: list[tuple[float, float]] = []
        epoch_seconds: list[float] = []
        network.fit(backend_batches(x_train, y_train, batch_size, True), epochs=epochs, verbose=0,
                    shuffle=False, steps_per_epoch=batching.steps_per_epoch(len(y_train), batch_size),  # it shuffles
                    callbacks=[_score_each_epoch(clock, trace, test_accuracy, epoch_seconds)])
    label = "MLP" if model == "mlp" else "fastText-style model"
    return PeerResult(f"ours: hashed tf-idf in {workers} processes, {label} on {keras.backend.backend()}",
                      trace[-1][1], trace[-1][0], trace,
                      details={"model": model, "epochs": epochs, "batch_size": batch_size, "workers": workers,
                               "top_k": top_k, "hash_size": hash_size, "binary": binary, "nse_multiple": nse_multiple,
                               "learning_rate": float(network.optimizer.learning_rate.numpy()),
                               "steps_per_execution": steps_per_execution, "jit_compile": network.jit_compile,
                               "pad_last": pad_last, "overlap": overlap,
                               "backend": keras.backend.backend(), "classes": train.num_classes,
                               "first_score_seconds": round(clock.first_score_seconds, 2),
                               "stages": stages, "epoch_seconds": epoch_seconds})


#: Every contender of the race; the series' own routes are the names that start with ``ours``.
PEERS = ("sgd_out_of_core", "logistic_regression", "fasttext", "vowpal_wabbit", "ours_mlp_gathered",
         "ours_hashed_mlp", "ours_hashed_fasttext")
#: The Keras backend each of the series' routes runs on unless its options say ``backend=``: chapter 04's route
#: on TensorFlow (its ``tf.data`` pipeline), the hashed routes on JAX (the fastest step, chapter 12).
BACKENDS = {"ours_mlp_gathered": "tensorflow", "ours_hashed_mlp": "jax", "ours_hashed_fasttext": "jax"}
#: Corpora of a race: IMDB, and the stand-ins of chapter 10 (``utils.standins``; generated, never real).
DATASETS = ("imdb", "ag_news", "dbpedia", "yelp_polarity", "amazon_polarity")
#: The Python package each peer needs beyond the series' own (imported inside the peer).
PACKAGES = {"fasttext": "fasttext", "vowpal_wabbit": "vowpalwabbit"}
#: Their distributions, whose versions a race reports where they are installed.
PEER_DISTRIBUTIONS = ("fasttext-wheel", "vowpalwabbit")


def missing_package(name: str) -> str | None:
    """Return why peer ``name`` cannot run here (its package is not installed), or ``None`` if it can.

    fastText's prebuilt wheel (``fasttext-wheel`` 0.9.2) exists for Python 3.11 and 3.12 only, so the
    requirements install it there and the fastText peer is skipped on Python 3.13. ``vowpalwabbit`` 9.11.9
    has wheels for 3.11 to 3.13.
    """
    package = PACKAGES.get(name)
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    if name == "fasttext":
        return (f"the fasttext package is not installed (fasttext-wheel 0.9.2 has wheels for Python 3.11 and "
                f"3.12, this is {sys.version.split()[0]})")
    return f"the {package} package is not installed"


def imdb_streams(seed: int = 0) -> tuple[streaming.DocumentFiles, streaming.DocumentFiles]:
    """Return ``(train, test)`` IMDB streams: all 25,000 training reviews (train + val of ``datasets.load``, seeded
    order) and the 25,000 test reviews."""
    streams = streaming.open_streams("imdb")
    train = streaming.DocumentFiles(streams.train.paths + streams.val.paths,
                                    np.concatenate([streams.train.labels, streams.val.labels]), 2)
    return train.sample(len(train), seed), streams.test


def race_streams(dataset: str, seed: int = 0) -> tuple[streaming.DocumentStream, streaming.DocumentStream]:
    """Return ``(train, test)`` streams of ``dataset`` (one of :data:`DATASETS`).

    A stand-in is read from the ``train.csv`` and ``test.csv`` that ``bench/standins.py`` wrote under
    ``data/standins/<dataset>`` (:func:`bench.standins.ensure_written` writes them; the race calls it
    before any clock starts). Their rows are shuffled already, classes balanced.
    """
    if dataset == "imdb":
        return imdb_streams(seed)
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    from bench.standins import OUT_DIR
    from utils.standins import STANDINS

    classes = STANDINS[dataset].num_classes
    return tuple(streaming.ZhangCsvRows(OUT_DIR / dataset / f"{split}.csv", classes) for split in ("train", "test"))


def ensure_standin(dataset: str, seed: int = 0, scale: float = 1.0) -> dict[str, Any]:
    """Write the stand-in ``dataset`` under ``data/standins`` unless it is there with this seed and scale; return
    its ``standin.json`` record (:func:`bench.standins.ensure_written`). Minutes at full size: call it before a
    race, never inside a contender's clock."""
    from bench.standins import OUT_DIR, ensure_written

    if dataset not in DATASETS or dataset == "imdb":
        raise ValueError(f"no stand-in is called {dataset!r}; stand-ins: {', '.join(DATASETS[1:])}")
    return ensure_written(dataset, OUT_DIR, scale, seed)


def describe_corpus(dataset: str, seed: int = 0) -> dict[str, Any]:
    """Return the training and test documents, classes and median words per training document of ``dataset``.

    The median counts whitespace-separated words, as the guide's ``get_num_words_per_sample`` does; with the
    documents it gives the guide's samples-per-word ratio (its step 2.5: below 1,500, n-grams and an MLP).
    """
    train, test = race_streams(dataset, seed)
    words = np.concatenate([[len(text.split()) for text in texts] for texts, _ in train.chunks()])
    test_documents = sum(len(labels) for _, labels in test.chunks())
    median = float(np.median(words))
    return {"train_documents": len(words), "test_documents": test_documents, "classes": train.num_classes,
            "median_words_per_sample": median, "samples_per_word": round(len(words) / median, 1)}


def read_all(stream: streaming.DocumentStream) -> tuple[list[str], np.ndarray]:
    """Return every text and label of ``stream``, in memory (for the contenders that need them so)."""
    texts: list[str] = []
    labels = []
    for chunk_texts, chunk_labels in stream.chunks():
        texts.extend(chunk_texts)
        labels.append(chunk_labels)
    return texts, np.concatenate(labels)


def run_peer(name: str, seed: int = 0, limit: int | None = None, dataset: str = "imdb", **options: Any) -> PeerResult:
    """Run peer ``name`` (one of :data:`PEERS`) on ``dataset`` in this process, reading the data itself.

    The race's :class:`Clock` starts here, before the documents are listed. ``limit`` keeps the first
    ``limit`` training and test documents (for quick checks); ``options`` go to the peer's function.
    """
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    clock = Clock()
    train, test = race_streams(dataset, seed)
    if limit is not None:
        train = train.head(limit)
        test = test.sample(limit, seed) if isinstance(test, streaming.DocumentFiles) else test.head(limit)
    if name == "sgd_out_of_core":
        return sgd_out_of_core(train, test, seed=seed, clock=clock, **options)
    if name == "fasttext":
        return fasttext_supervised(train, test, seed=seed, clock=clock, **options)
    if name == "vowpal_wabbit":
        return vowpal_wabbit(train, test, seed=seed, clock=clock, **options)
    if name.startswith("ours_hashed_"):
        return hashed_keras(train, test, model=name.removeprefix("ours_hashed_"), seed=seed, clock=clock, **options)
    train_texts, y_train = read_all(train)
    test_texts, y_test = read_all(test)
    if name == "logistic_regression":
        return logistic_regression(train_texts, y_train, test_texts, y_test, seed=seed, clock=clock, **options)
    _, x_train, (x_test,), feature_seconds = vectorize_texts(train_texts, y_train, test_texts)
    return mlp_gathered(x_train, y_train, x_test, y_test, feature_seconds=feature_seconds, seed=seed, clock=clock,
                        **options)


def run_measured(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Run one peer under a :class:`MemoryMonitor` (in a fresh process); return its result as a dict.

    ``options["backend"]`` (default :data:`BACKENDS`) is set as ``KERAS_BACKEND`` before Keras loads; the
    RSS includes the peer's worker processes, if any.
    """
    quiet_tensorflow()
    options = dict(options)
    backend = options.pop("backend", BACKENDS.get(name))
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend
    with MemoryMonitor(interval=0.02, include_children=True) as monitor:
        result = run_peer(name, **options)
    result.peak_rss_mb = round(monitor.peak / MB, 1)
    timeline = monitor.timeline.thinned(MEMORY_POINTS)
    result.memory = [(round(t, 2), round(rss / MB, 1)) for t, rss in zip(timeline.times, timeline.rss, strict=True)]
    return asdict(result)


def run_isolated(name: str, **options: Any) -> PeerResult:
    """Run :func:`run_peer` in a fresh process, so that the peak RSS is this peer's alone (``backend=`` picks the
    Keras backend of one of the series' routes)."""
    fields = run_fresh(run_measured, name, options, daemon=False)  # daemon processes may not start workers
    for key in ("trace", "memory"):
        fields[key] = [tuple(point) for point in fields[key]]
    return PeerResult(**fields)


def plot_peers(results: Sequence[PeerResult], target: float = TARGET_ACCURACY):
    """Return a figure: test accuracy against time (one marker per pass / epoch), RSS over time, peak RSS bars."""
    fig, (acc_ax, mem_ax, bar_ax) = plt.subplots(1, 3, figsize=(16, 4.2))
    names = [r.name.split(":")[0].split(" (")[0] for r in results]
    for i, (result, name) in enumerate(zip(results, names, strict=True)):
        seconds, accuracy = zip(*result.trace, strict=True)
        acc_ax.plot(seconds, accuracy, "o-", color=f"C{i}", label=result.name)
        if result.memory:
            times, rss = zip(*result.memory, strict=True)
            mem_ax.plot(times, [r / 1000 for r in rss], color=f"C{i}",
                        label=f"{name}: peak {result.peak_rss_mb / 1000:.2f} GB")
    acc_ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target}")
    acc_ax.set(xlabel="seconds (features + training)", ylabel="test accuracy", title="test accuracy over time")
    mem_ax.set(xlabel="seconds since the process started", ylabel="GB", title="memory (RSS) of each peer's process")
    mem_ax.set_ylim(bottom=0)
    bar_ax.barh(names, [r.peak_rss_mb / 1000 for r in results], color=[f"C{i}" for i in range(len(results))])
    bar_ax.set(xlabel="peak RSS, GB", title="peak memory")
    bar_ax.invert_yaxis()
    for ax in (acc_ax, mem_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    bar_ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


#: Each contender's settings: the full race, and ``--quick`` (fewer passes and epochs, a CI check).
RACE_OPTIONS = {
    "sgd_out_of_core": {"passes": 3},
    "logistic_regression": {},
    "fasttext": {"epochs": (1, 2, 3, 5)},
    "vowpal_wabbit": {"passes": (1, 2, 3)},
    "ours_mlp_gathered": {"epochs": 4},
    "ours_hashed_mlp": {"epochs": 3},
    "ours_hashed_fasttext": {"epochs": 2},
}
QUICK_OPTIONS = {
    "sgd_out_of_core": {"passes": 2},
    "logistic_regression": {"c_values": (4.0, 16.0)},
    "fasttext": {"epochs": (1, 2)},
    "vowpal_wabbit": {"passes": (1, 2)},
    "ours_mlp_gathered": {"epochs": 2},
    "ours_hashed_mlp": {"epochs": 2},
    "ours_hashed_fasttext": {"epochs": 2},
}
#: ``--one-pass``: one pass over the training documents each (documents per second, features included).
ONE_PASS_OPTIONS = {
    "sgd_out_of_core": {"passes": 1},
    "logistic_regression": {"c_values": (16.0,)},
    "fasttext": {"epochs": (1,)},
    "vowpal_wabbit": {"passes": (1,)},
    "ours_mlp_gathered": {"epochs": 1},
    "ours_hashed_mlp": {"epochs": 1},
    "ours_hashed_fasttext": {"epochs": 1},
}
#: Training and test documents of a ``--quick`` race.
QUICK_LIMIT = 2000


def race_record(key: str, results: Sequence[PeerResult], target: float = TARGET_ACCURACY) -> dict[str, Any]:
    """Return one contender's record from its runs: ``name`` (its key in :data:`PEERS`), ``label``, and the
    figures, trace and memory of its *median run*, and ``runs``, every run's figures (the spread).

    The median run is the middle one by time to ``target`` (runs that never reach it last, then by seconds);
    with an even number of runs, the faster of the two middle ones.
    """
    if not results:
        raise ValueError(f"{key}: no runs")

    def pace(result: PeerResult) -> tuple[bool, float, float]:
        reached = time_to_reach(result.trace, target)
        return reached is None, reached or 0.0, result.seconds

    median = sorted(results, key=pace)[(len(results) - 1) // 2]
    return {"name": key, "label": median.name, "test_accuracy": round(median.test_accuracy, 4),
            "seconds": round(median.seconds, 2), "time_to_target_s": time_to_reach(median.trace, target),
            "peak_rss_mb": median.peak_rss_mb, "trace": [[round(t, 2), round(a, 4)] for t, a in median.trace],
            "details": median.details, "memory": median.memory,
            "runs": [{"test_accuracy": round(r.test_accuracy, 4), "seconds": round(r.seconds, 2),
                      "time_to_target_s": time_to_reach(r.trace, target), "peak_rss_mb": r.peak_rss_mb}
                     for r in results]}


def load_race(path: str | Path) -> tuple[dict[str, Any], list[PeerResult]]:
    """Read a race that ``--json`` wrote; return it whole and its records as :class:`PeerResult` (for
    :func:`plot_peers`), in the order they ran."""
    race = json.loads(Path(path).read_text(encoding="utf-8"))
    results = [PeerResult(record["label"], record["test_accuracy"], record["seconds"],
                          [tuple(point) for point in record["trace"]], record["peak_rss_mb"],
                          [tuple(point) for point in record["memory"]], record["details"])
               for record in race["records"]]
    return race, results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run every contender in a fresh process on the same split; print and write their records."""
    parser = argparse.ArgumentParser(description="Every peer and every route of the series, each in a fresh "
                                                 "process, on the same split, with the same clock.")
    parser.add_argument("--dataset", choices=DATASETS, default="imdb",
                        help="IMDB, or a stand-in of chapter 10 (generated, not real; written first if missing)")
    parser.add_argument("--scale", type=float, default=1.0, help="a stand-in's share of its published rows")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_LIMIT:,} training and test documents, fewer passes (a CI check, not figures)")
    parser.add_argument("--one-pass", action="store_true",
                        help="one pass or epoch per contender, one trace point each (documents per second)")
    parser.add_argument("--json", type=Path, help="write the records here (replaced whole after each contender)")
    parser.add_argument("--peers", nargs="+", choices=PEERS, help="these contenders only")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run every contender this many times, round-robin (records: the median run and all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    standin = ensure_standin(args.dataset, args.seed, args.scale) if args.dataset != "imdb" else None
    corpus = describe_corpus(args.dataset, args.seed)
    load_at_start = load_average()
    runs: dict[str, list[PeerResult]] = {}
    skipped: dict[str, str] = {}
    for round_number in range(args.repeats):  # round-robin: every contender once, then again
        for key in args.peers or PEERS:
            reason = missing_package(key)
            if reason is not None:
                skipped[key] = reason
                if round_number == 0:
                    print(f"{key}: skipped, {reason}", flush=True)
                continue
            options = (ONE_PASS_OPTIONS if args.one_pass else QUICK_OPTIONS if args.quick else RACE_OPTIONS)[key]
            result = run_isolated(key, seed=args.seed, limit=QUICK_LIMIT if args.quick else None,
                                  dataset=args.dataset, **options)
            runs.setdefault(key, []).append(result)
            reached = time_to_reach(result.trace)
            print(f"round {round_number + 1}, {key}: test accuracy {result.test_accuracy:.4f} after "
                  f"{result.seconds:.1f} s, {TARGET_ACCURACY} "
                  f"{'at ' + format(reached, '.1f') + ' s' if reached is not None else 'not reached'}, "
                  f"peak {result.peak_rss_mb:,.0f} MB", flush=True)
            if args.json:
                write_json(args.json, {
                    "dataset": args.dataset, "quick": args.quick, "one_pass": args.one_pass, "seed": args.seed,
                    "repeats": args.repeats, "standin": None if standin is None else
                    {k: standin[k] for k in ("scale", "files")}, "corpus": corpus,
                    "target_accuracy": TARGET_ACCURACY, "machine": machine_summary(),
                    "load_average_at_start": load_at_start,
                    "versions": package_versions(optional=(*PEER_DISTRIBUTIONS, "jax")), "skipped": skipped,
                    "records": [race_record(name, results) for name, results in runs.items()]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
