"""The tools a practitioner would pick instead of our pipelines, measured the same way (chapter 07).

TensorFlow, scikit-learn's estimators and fastText are imported inside the
peer that uses them: each peer runs in a fresh process whose peak RSS is
reported, and a peer that does not use TensorFlow must not pay for loading it.

Each peer trains on the same documents and is scored on the same test set, and
returns a :class:`PeerResult`: test accuracy, training time, peak RSS and an
accuracy-over-time *trace* (test accuracy after each pass or epoch, against the
time spent so far, building the features included), from which
:func:`time_to_reach` reads "time to reach 0.88 test accuracy". The trace
looks at the test set after every pass for reporting only; nothing is chosen
from it.

* :func:`sgd_out_of_core` — scikit-learn's out-of-core recipe:
  ``HashingVectorizer`` + ``SGDClassifier.partial_fit`` (averaged) over chunks
  streamed from disk, a few passes.
* :func:`logistic_regression` — an in-memory linear baseline (liblinear) on
  the tf-idf features of :class:`utils.vectorize.NgramVectorizer`, ``C``
  chosen on a validation part of the training data.
* :func:`fasttext_supervised` — fastText (Joulin et al. 2016) from a training
  file on disk. ``fasttext-wheel`` 0.9.2's ``predict`` fails under NumPy 2
  (``np.array(..., copy=False)``), so accuracy comes from its own
  ``model.test(path)`` (precision at 1, which is accuracy for one label per document).
* :func:`vowpal_wabbit` — Vowpal Wabbit (``vowpalwabbit``): hashed word 1–2-grams
  (``--ngram``, ``-b`` bits), a few passes over its own cache file, logistic
  loss (one-against-all for more than two classes).
* :func:`mlp_gathered` — our best batched pipeline of chapter 04 (sparse-input
  MLP, ``tf.data`` gathering CSR rows, ``steps_per_execution=16``).

:func:`run_isolated` runs one peer, data loading included, in a fresh process
(:func:`utils.processes.run_fresh`) so that its peak RSS is its own. As a script,
every peer and every route of the series (the names that start with ``ours``)
runs that way on the same split, with the same clock, into one JSON file::

    python bench/peers.py --dataset imdb --quick --json /tmp/peers.json   # 2,000 documents: a CI check
    python bench/peers.py --dataset imdb --json results/peers_imdb.json    # all 25,000 / 25,000
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp

from utils import readers, streaming
from utils.memory import MB, MemoryMonitor
from utils.processes import run_fresh, write_json
from utils.runtime import machine_summary, package_versions, quiet_tensorflow
from utils.vectorize import NgramVectorizer, vectorize_texts

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
        seconds: time to build the features and train the final model (evaluation excluded).
        trace: ``(seconds so far, test accuracy)`` after each pass / epoch.
        peak_rss_mb: peak RSS of the process (filled in by :func:`run_isolated`; 0 until then).
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


def _hashing_vectorizer(hash_size: int):
    """The out-of-core recipe's features: hashed word 1-2 grams, l2-normalised counts."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=hash_size, ngram_range=(1, 2), alternate_sign=False,
                             decode_error="replace", dtype=np.float32)


def sgd_out_of_core(train: streaming.DocumentStream, test: streaming.DocumentStream, *, passes: int = 3,
                    chunk_size: int = 1000, hash_size: int = 2**20, alpha: float = 1e-5, average: bool = True,
                    seed: int = 0) -> PeerResult:
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

    Returns:
        A :class:`PeerResult` whose trace has one point per pass.
    """
    from sklearn.linear_model import SGDClassifier

    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    hasher = _hashing_vectorizer(hash_size)
    classifier = SGDClassifier(loss="hinge", alpha=alpha, average=average, random_state=seed)
    classes = np.arange(train.num_classes)
    trace, spent = [], 0.0
    for number in range(passes):
        stream = train.sample(len(train), seed + number) if isinstance(train, streaming.DocumentFiles) else train
        start = time.perf_counter()
        for texts, labels in stream.chunks(chunk_size):
            classifier.partial_fit(hasher.transform(texts), labels, classes=classes)
        spent += time.perf_counter() - start
        trace.append((spent, _streamed_accuracy(lambda texts: classifier.predict(hasher.transform(texts)), test,
                                                chunk_size)))
    return PeerResult("sklearn HashingVectorizer + SGD (out of core)", trace[-1][1], spent, trace,
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
                        validation_fraction: float = 0.2, seed: int = 0) -> PeerResult:
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

    Returns:
        A :class:`PeerResult` with a one-point trace: the whole time, vectorizing and choosing ``C`` included.
    """
    from sklearn.linear_model import LogisticRegression

    if not c_values:
        raise ValueError("c_values must not be empty")
    if len(train_texts) != len(y_train):
        raise ValueError(f"{len(train_texts)} training texts but {len(y_train)} labels")
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
    seconds = time.perf_counter() - start
    accuracy = float(model.score(vectorizer.transform(test_texts), y_test))
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
                        threads: int = 2, seed: int = 0, workdir: Path | None = None) -> PeerResult:
    """Train fastText's supervised classifier once per entry of ``epochs``; the last one is the result.

    fastText trains a whole run of ``epoch`` passes in one call, so each trace
    point is a separate model trained for that many epochs (its time: writing
    the training file plus that run). With ``threads`` > 1 fastText is not
    bit-for-bit reproducible.

    Returns:
        A :class:`PeerResult` with one trace point per entry of ``epochs``.
    """
    import fasttext

    if not epochs or min(epochs) < 1:
        raise ValueError(f"epochs must be a non-empty list of counts >= 1, got {epochs}")
    with tempfile.TemporaryDirectory(prefix="fasttext-", dir=workdir) as tmp:
        start = time.perf_counter()
        train_path = Path(tmp) / "train.txt"
        write_fasttext_file(train.sample(len(train), seed) if isinstance(train, streaming.DocumentFiles) else train,
                            train_path)
        file_seconds = time.perf_counter() - start
        test_path = Path(tmp) / "test.txt"
        write_fasttext_file(test, test_path)
        trace = []
        for count in epochs:
            start = time.perf_counter()
            model = fasttext.train_supervised(str(train_path), epoch=count, wordNgrams=word_ngrams, lr=lr, dim=dim,
                                              thread=threads, seed=seed, verbose=0)
            seconds = file_seconds + time.perf_counter() - start
            _, precision_at_1, _ = model.test(str(test_path))
            trace.append((seconds, float(precision_at_1)))
    return PeerResult("fastText supervised", trace[-1][1], trace[-1][0], trace,
                      details={"epochs": list(epochs), "wordNgrams": word_ngrams, "lr": lr, "dim": dim,
                               "threads": threads, "file_seconds": round(file_seconds, 1)})


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
                  workdir: Path | None = None) -> PeerResult:
    """Train Vowpal Wabbit once per entry of ``passes`` from a file on disk; the last one is the result.

    Each model runs VW's own driver on the training file: it parses it into a
    cache file (``--cache_file``, rebuilt by every model so that each time is a
    whole run), then makes ``passes`` passes over the cache (``--holdout_off``:
    every row trains). Features are hashed word 1..``ngram``-grams into
    ``2**bits`` weights; the loss is logistic, with one-against-all
    (``--oaa``) for more than two classes. Each trace point's time is writing the
    training file plus that model's run; scoring (``-t``) is excluded.

    Returns:
        A :class:`PeerResult` with one trace point per entry of ``passes``.
    """
    from vowpalwabbit import Workspace

    if not passes or min(passes) < 1:
        raise ValueError(f"passes must be a non-empty list of counts >= 1, got {passes}")
    classes = [] if train.num_classes == 2 else ["--oaa", str(train.num_classes)]
    quiet = ["--quiet", "--random_seed", str(seed)]
    with tempfile.TemporaryDirectory(prefix="vw-", dir=workdir) as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        write_vw_file(train.sample(len(train), seed) if isinstance(train, streaming.DocumentFiles) else train,
                      folder / "train.vw")
        file_seconds = time.perf_counter() - start
        write_vw_file(test, folder / "test.vw")
        truth = np.array([int(line.split(" ", 1)[0]) for line in open(folder / "test.vw", encoding="utf-8")])
        trace = []
        for count in passes:
            start = time.perf_counter()
            Workspace(arg_list=["-d", str(folder / "train.vw"), "--cache_file", str(folder / "train.cache"), "-k",
                                "--passes", str(count), "--holdout_off", "-b", str(bits), "--ngram", f"t{ngram}",
                                "--loss_function", "logistic", "-f", str(folder / "model.vw"), *classes,
                                *quiet]).finish()
            seconds = file_seconds + time.perf_counter() - start
            Workspace(arg_list=["-t", "-i", str(folder / "model.vw"), "-d", str(folder / "test.vw"), "-p",
                                str(folder / "predictions.txt"), *quiet]).finish()
            predicted = np.loadtxt(folder / "predictions.txt", usecols=0, ndmin=1)
            if train.num_classes == 2:
                predicted = np.where(predicted > 0, 1, -1)
            trace.append((seconds, float(np.mean(predicted == truth))))
    return PeerResult("Vowpal Wabbit (hashed 1-2-grams, cache file)", trace[-1][1], trace[-1][0], trace,
                      details={"passes": list(passes), "bits": bits, "ngram": ngram, "loss": "logistic",
                               "file_seconds": round(file_seconds, 1)})


def mlp_gathered(x_train: sp.csr_matrix, y_train: np.ndarray, x_test: sp.csr_matrix, y_test: np.ndarray, *,
                 epochs: int = 4, batch_size: int = 128, steps_per_execution: int = 16,
                 feature_seconds: float = 0.0, seed: int = 0) -> PeerResult:
    """Train the guide's MLP with chapter 04's best pipeline, scoring the test set after every epoch.

    Args:
        x_train, y_train, x_test, y_test: features and integer class labels (0..classes-1; two classes get the
            guide's sigmoid unit, more its softmax).
        epochs: training epochs (fixed; chapter 04 found 4 a good count for IMDB).
        batch_size, steps_per_execution: as in ``bench/pipelines.py``'s ``tfdata_gather_spe16``.
        feature_seconds: time it took to build the features, added to every trace point.
        seed: seed of the weights and the shuffling.

    Returns:
        A :class:`PeerResult` with one trace point per epoch (evaluation time excluded).
    """
    import keras

    from utils.models import build_mlp
    from utils.runtime import set_seed
    from utils.tfdata import gathered_dataset

    num_classes = max(2, int(max(y_train.max(), y_test.max())) + 1)
    # The sigmoid unit of two classes takes float labels; a softmax takes the class indices.
    as_labels = (lambda y: y.astype(np.float32)) if num_classes == 2 else (lambda y: y.astype(np.int64))
    set_seed(seed)
    model = build_mlp(x_train.shape[1], num_classes, sparse_input=True, steps_per_execution=steps_per_execution)
    dataset = gathered_dataset(x_train, as_labels(y_train), batch_size, seed=seed)
    trace: list[tuple[float, float]] = []

    class TestTrace(keras.callbacks.Callback):
        """Adds the epoch's training time and the test accuracy after it to ``trace``."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            spent = (trace[-1][0] if trace else feature_seconds) + time.perf_counter() - self.start
            scores = self.model.evaluate(x_test, as_labels(y_test), batch_size=1024, verbose=0,
                                         return_dict=True)
            trace.append((spent, float(scores["accuracy"])))

    model.fit(dataset, epochs=epochs, shuffle=False, verbose=0, callbacks=[TestTrace()])  # the dataset shuffles
    return PeerResult("ours: MLP, tf.data gather, steps_per_execution=16", trace[-1][1], trace[-1][0], trace,
                      details={"epochs": epochs, "batch_size": batch_size, "steps_per_execution": steps_per_execution,
                               "feature_seconds": round(feature_seconds, 1), "classes": num_classes})


#: Every contender of the race; the series' own routes are the names that start with ``ours``.
PEERS = ("sgd_out_of_core", "logistic_regression", "fasttext", "vowpal_wabbit", "ours_mlp_gathered")
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


def run_peer(name: str, seed: int = 0, limit: int | None = None, **options: Any) -> PeerResult:
    """Run peer ``name`` (one of :data:`PEERS`) on IMDB in this process, reading the data itself.

    ``limit`` keeps the first ``limit`` training and test documents (for quick checks);
    ``options`` go to the peer's function.
    """
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    train, test = imdb_streams(seed)
    if limit is not None:
        train, test = train.head(limit), test.sample(limit, seed)
    if name == "sgd_out_of_core":
        return sgd_out_of_core(train, test, seed=seed, **options)
    if name == "fasttext":
        return fasttext_supervised(train, test, seed=seed, **options)
    if name == "vowpal_wabbit":
        return vowpal_wabbit(train, test, seed=seed, **options)
    train_texts = [readers.read_document(p) for p in train.paths]
    test_texts = [readers.read_document(p) for p in test.paths]
    if name == "logistic_regression":
        return logistic_regression(train_texts, train.labels, test_texts, test.labels, seed=seed, **options)
    _, x_train, (x_test,), feature_seconds = vectorize_texts(train_texts, train.labels, test_texts)
    return mlp_gathered(x_train, train.labels, x_test, test.labels, feature_seconds=feature_seconds, seed=seed,
                        **options)


def run_measured(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Run one peer under a :class:`MemoryMonitor` (in a fresh process); return its result as a dict."""
    quiet_tensorflow()
    with MemoryMonitor(interval=0.02) as monitor:
        result = run_peer(name, **options)
    result.peak_rss_mb = round(monitor.peak / MB, 1)
    timeline = monitor.timeline.thinned(MEMORY_POINTS)
    result.memory = [(round(t, 2), round(rss / MB, 1)) for t, rss in zip(timeline.times, timeline.rss, strict=True)]
    return asdict(result)


def run_isolated(name: str, **options: Any) -> PeerResult:
    """Run :func:`run_peer` in a fresh process, so that the peak RSS is this peer's alone."""
    fields = run_fresh(run_measured, name, options)
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
}
QUICK_OPTIONS = {
    "sgd_out_of_core": {"passes": 2},
    "logistic_regression": {"c_values": (4.0, 16.0)},
    "fasttext": {"epochs": (1, 2)},
    "vowpal_wabbit": {"passes": (1, 2)},
    "ours_mlp_gathered": {"epochs": 2},
}
#: Training and test documents of a ``--quick`` race.
QUICK_LIMIT = 2000


def race_record(key: str, result: PeerResult, target: float = TARGET_ACCURACY) -> dict[str, Any]:
    """Return one contender's record: ``name`` (its key in :data:`PEERS`), ``label``, the figures and the trace."""
    return {"name": key, "label": result.name, "test_accuracy": round(result.test_accuracy, 4),
            "seconds": round(result.seconds, 2), "time_to_target_s": time_to_reach(result.trace, target),
            "peak_rss_mb": result.peak_rss_mb, "trace": [[round(t, 2), round(a, 4)] for t, a in result.trace],
            "details": result.details, "memory": result.memory}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run every contender in a fresh process on the same split; print and write their records."""
    parser = argparse.ArgumentParser(description="Every peer and every route of the series, each in a fresh "
                                                 "process, on the same split, with the same clock.")
    parser.add_argument("--dataset", choices=("imdb",), default="imdb", help="the corpus of the race")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_LIMIT:,} training and test documents, fewer passes (a CI check, not figures)")
    parser.add_argument("--json", type=Path, help="write the records here (replaced whole after each contender)")
    parser.add_argument("--peers", nargs="+", choices=PEERS, help="these contenders only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    records: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for key in args.peers or PEERS:
        reason = missing_package(key)
        if reason is not None:
            skipped[key] = reason
            print(f"{key}: skipped, {reason}", flush=True)
            continue
        options = (QUICK_OPTIONS if args.quick else RACE_OPTIONS)[key]
        result = run_isolated(key, seed=args.seed, limit=QUICK_LIMIT if args.quick else None, **options)
        records.append(race_record(key, result))
        reached = records[-1]["time_to_target_s"]
        print(f"{key}: test accuracy {result.test_accuracy:.4f} after {result.seconds:.1f} s, "
              f"{TARGET_ACCURACY} {'at ' + format(reached, '.1f') + ' s' if reached is not None else 'not reached'}, "
              f"peak {result.peak_rss_mb:,.0f} MB", flush=True)
        if args.json:
            write_json(args.json, {"dataset": args.dataset, "quick": args.quick, "seed": args.seed,
                                   "target_accuracy": TARGET_ACCURACY, "machine": machine_summary(),
                                   "versions": package_versions(optional=PEER_DISTRIBUTIONS), "skipped": skipped,
                                   "records": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
