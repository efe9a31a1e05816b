"""The scaling sweep of chapter 07: each approach of chapters 01–05 at several training-set sizes.

For every size ``n`` the parent takes the first ``n`` documents of a fixed,
seeded pool of IMDB reviews, vectorizes them once (``NgramVectorizer``, as
``bench/pipelines.py`` does) and then runs every approach in a **fresh Python
process** of its own, so that each peak RSS belongs to that one point alone:

* the in-memory and batched approaches of chapters 01–04 run
  ``bench.pipelines.run_child`` (training only: the features are handed over
  precomputed, so their peak is the training phase's);
* ``in_memory_vectorizing`` is the step those approaches need first: read
  every text into a list and fit ``NgramVectorizer`` (``bench.memory_scaling``,
  no TensorFlow in that process);
* ``streaming_from_disk`` is chapter 05's pipeline from the files on disk:
  tokenize into the hashed on-disk cache, select features, train from the
  cache; its peak covers all of that, TensorFlow included.

The pool is the 25,000 IMDB training reviews (seeded order) followed by 20,000
of the 25,000 test reviews; the other 5,000 test reviews are held out and score
every point. Sizes up to 25,000 therefore train on training reviews only.
Time per epoch is the median epoch after the first (warm-up) epoch, and ms per
step the series' figure (:func:`utils.callbacks.ms_per_step`).

The second half of this module fits a straight line ``a + b·n`` to each
approach's peak RSS and time per epoch (:func:`fit_growth`) and extrapolates it
to the corpora of :data:`utils.datasets.REGISTRY` (:func:`extrapolate`), with a
verdict per memory budget. One part of the corpus is not proportional to it: the
n-gram vocabulary that in-memory vectorizing builds grows as Heaps' law says
(:mod:`utils.vocabulary`). Given the corpus's measured vocabulary growth
(:func:`imdb_vocabulary`, from ``results/vocabulary_growth.json``), the
vectorizing step's memory is fitted as a part per document plus a part per
distinct 1–2-gram (:class:`VectorizingFit`) instead of a line. The approaches of chapters 01–04 are measured as
training only, from precomputed features; before training they must read and
vectorize the texts in memory too, so :func:`extrapolate` adds the in-memory
vectorizing step's growth (its peak above its starting RSS) to their training
peak.

Usage::

    python bench/scaling.py --quick --json out.json   # 3 small sizes, 4 approaches: ~1.5 minutes on 2 cores
    python bench/scaling.py --json results/07_scaling_sweep.json   # the full sweep: ~21 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.runtime import machine_summary, package_versions, quiet_tensorflow, set_seed

quiet_tensorflow()  # before TensorFlow loads, here and in the child processes (they inherit the setting)

import matplotlib.pyplot as plt
import numpy as np
import scipy.optimize
import scipy.sparse as sp
from matplotlib.legend_handler import HandlerTuple

from bench import memory_scaling
from bench.pipelines import run_child
from utils import REPO_ROOT, datasets, hashed_tfidf, models, readers, streaming, tfdata
from utils.callbacks import StepTimer
from utils.memory import MB, MemoryMonitor
from utils.processes import run_fresh, write_json
from utils.vectorize import vectorize_texts
from utils.vocabulary import HeapsLaw

#: Approaches of chapters 01–04 measured through bench/pipelines.py.
BENCH_APPROACHES = ("dense_in_memory", "sparse_in_memory", "generator_sparse", "pydataset_sparse",
                    "tfdata_gather_spe16")
#: The sweep's name for chapter 05's pipeline, and for the in-memory vectorizing step.
STREAMING = "streaming_from_disk"
VECTORIZING = "in_memory_vectorizing"
APPROACHES = (*BENCH_APPROACHES, STREAMING, VECTORIZING)
FULL_SIZES = (1000, 2500, 5000, 10_000, 25_000, 45_000)
QUICK_SIZES = (1000, 2000, 4000)
QUICK_APPROACHES = ("dense_in_memory", "tfdata_gather_spe16", STREAMING, VECTORIZING)
HELD_OUT = 5000
#: The dense matrix of 25,000 reviews already needs ~6.8 GB of RSS; larger points are not run for it.
DENSE_MAX_SIZE = 25_000


def document_pool(seed: int) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Return ``(pool_paths, pool_labels, held_out_paths, held_out_labels)`` of IMDB review files.

    The pool is every training review in a seeded order, then 20,000 test
    reviews; the held-out scoring set is the other ``HELD_OUT`` test reviews.
    """
    folder = datasets.fetch("imdb")
    train_paths, train_labels = readers.aclimdb_files(folder, "train")
    test_paths, test_labels = readers.aclimdb_files(folder, "test")
    rng = np.random.default_rng(seed)
    train_order, test_order = rng.permutation(len(train_paths)), rng.permutation(len(test_paths))
    held, extra = test_order[:HELD_OUT], test_order[HELD_OUT:]
    paths = [train_paths[i] for i in train_order] + [test_paths[i] for i in extra]
    labels = np.concatenate([train_labels[train_order], test_labels[extra]])
    return paths, labels, [test_paths[i] for i in held], test_labels[held]


def prepare_point(folder: Path, paths: list[str], labels: np.ndarray, test_paths: list[str],
                  test_labels: np.ndarray) -> dict[str, Any]:
    """Vectorize one point's documents into ``folder`` in the layout bench/pipelines.py's children read.

    Returns:
        Sizes, features and seconds to vectorize.
    """
    _, x_train, (x_test,), seconds = vectorize_texts([readers.read_document(p) for p in paths], labels,
                                                     [readers.read_document(p) for p in test_paths])
    sp.save_npz(folder / "x_train.npz", x_train, compressed=False)
    sp.save_npz(folder / "x_test.npz", x_test, compressed=False)
    np.save(folder / "y_train.npy", labels.astype(np.float32))
    np.save(folder / "y_test.npy", test_labels.astype(np.float32))
    (folder / "paths.json").write_text(json.dumps({"train": [str(p) for p in paths], "train_labels": labels.tolist(),
                                                   "test": [str(p) for p in test_paths],
                                                   "test_labels": test_labels.tolist()}))
    return {"train_samples": int(x_train.shape[0]), "stored_values": int(x_train.nnz),
            "features": int(x_train.shape[1]), "vectorize_seconds": round(seconds, 1)}


def streaming_child(folder: Path, epochs: int, batch_size: int, seed: int) -> dict[str, Any]:
    """Chapter 05's pipeline in this process, from the review files to trained model; return its measurements."""
    listed = json.loads((folder / "paths.json").read_text())
    train = streaming.DocumentFiles(tuple(listed["train"]), np.asarray(listed["train_labels"]), 2)
    clock = StepTimer()

    set_seed(seed)
    with tempfile.TemporaryDirectory(prefix="scaling-cache-") as workdir, MemoryMonitor(interval=0.02) as monitor:
        start = time.perf_counter()
        features = hashed_tfidf.HashedTfidf(2)
        cache = hashed_tfidf.tokenize_to_caches(features, {"train": train}, workdir, seed=seed)["train"]
        hashed_tfidf.select_features(features, cache)
        prepare_seconds = time.perf_counter() - start
        model = models.build_mlp(features.num_features, 2, sparse_input=True)
        batches = tfdata.cached_feature_batches(cache, features.transform_counts, features.num_features,
                                                batch_size, shuffle=True, seed=seed)
        model.fit(batches, epochs=epochs, verbose=0, callbacks=[clock])
    test_texts = [readers.read_document(p) for p in listed["test"]]
    x_test = features.transform(test_texts)
    scores = model.evaluate(x_test, np.asarray(listed["test_labels"], np.float32), batch_size=1024, verbose=0,
                            return_dict=True)
    return {"pipeline": STREAMING, "ms_per_step": round(clock.ms_per_step(), 2),
            "epoch_seconds": [round(s, 2) for s in clock.train_seconds], "prepare_seconds": round(prepare_seconds, 1),
            "peak_rss_mb": round(monitor.peak / MB, 1), "start_rss_mb": round(monitor.timeline.start / MB, 1),
            "test_accuracy": round(float(scores["accuracy"]), 4)}



def vectorizing_point(folder: Path) -> dict[str, Any]:
    """Measure reading every text and fitting ``NgramVectorizer`` in a fresh process (``bench.memory_scaling``)."""
    listed = json.loads((folder / "paths.json").read_text())
    train = streaming.DocumentFiles(tuple(listed["train"]), np.asarray(listed["train_labels"]), 2)
    (measured,) = memory_scaling.measure([("in_memory", train)])
    return {"pipeline": VECTORIZING, "peak_rss_mb": round(measured["peak_rss_bytes"] / MB, 1),
            "start_rss_mb": round(measured["start_rss_bytes"] / MB, 1), "seconds": round(measured["seconds"], 2)}


def sweep(sizes: list[int], approaches: list[str], epochs: int, batch_size: int, seed: int,
          json_path: Path | None = None, log=print) -> list[dict[str, Any]]:
    """Measure every approach at every size, each in a fresh process; return one result per point.

    Each result holds ``approach``, ``train_size``, ``peak_rss_mb``, ``epoch_seconds`` (the median
    after warm-up; ``None`` for the vectorizing step, which has ``seconds`` instead) and what the
    child reported. With ``json_path`` the results so far are written after every point.
    """
    paths, labels, test_paths, test_labels = document_pool(seed)
    if max(sizes) > len(paths):
        raise ValueError(f"largest size {max(sizes)} exceeds the pool of {len(paths)} documents")
    unknown = [a for a in approaches if a not in APPROACHES]
    if unknown:
        raise ValueError(f"unknown approach(es) {unknown}; known: {APPROACHES}")
    results: list[dict[str, Any]] = []
    for size in sorted(sizes):
        with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
            folder = Path(tmp)
            data = prepare_point(folder, paths[:size], labels[:size], test_paths, test_labels)
            log(f"{size} documents: {data['stored_values']:,} stored values, vectorized in "
                f"{data['vectorize_seconds']} s")
            for approach in approaches:
                if approach == "dense_in_memory" and size > DENSE_MAX_SIZE:
                    log(f"  {approach}: skipped above {DENSE_MAX_SIZE} documents")
                    continue
                if approach == VECTORIZING:
                    result = vectorizing_point(folder)
                elif approach == STREAMING:
                    result = run_fresh(streaming_child, folder, epochs, batch_size, seed, timeout=3600)
                else:
                    result = run_fresh(run_child, approach, folder, epochs, batch_size, seed, timeout=3600)
                median = None
                if "epoch_seconds" in result:
                    times = result["epoch_seconds"]
                    median = round(float(np.median(times[1:] if len(times) > 1 else times)), 2)
                result.update(approach=approach, train_size=size, test_size=len(test_paths),
                              epoch_median_seconds=median, epochs=epochs, batch_size=batch_size, data=data,
                              machine=machine_summary(), versions=package_versions())
                results.append(result)
                log(f"  {approach}: peak {result['peak_rss_mb']:.0f} MB, epoch {median} s")
                if json_path is not None:
                    write_json(json_path, results)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the sweep; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {QUICK_SIZES} and approaches {', '.join(QUICK_APPROACHES)}")
    parser.add_argument("--sizes", help=f"comma-separated training-set sizes (default {FULL_SIZES})")
    parser.add_argument("--approaches", help="comma-separated subset of: " + ", ".join(APPROACHES))
    parser.add_argument("--epochs", type=int, default=2, help="epochs per point, the first being warm-up")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="write the results to this JSON file (after every point)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be >= 1")
    try:
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(
            QUICK_SIZES if args.quick else FULL_SIZES)
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if min(sizes) < 1:
        parser.error("--sizes must be >= 1")
    approaches = args.approaches.split(",") if args.approaches else list(
        QUICK_APPROACHES if args.quick else APPROACHES)
    unknown = [a for a in approaches if a not in APPROACHES]
    if unknown:
        parser.error(f"unknown approach(es) {', '.join(unknown)}; known: {', '.join(APPROACHES)}")
    start = time.perf_counter()
    print(f"{machine_summary()}; sizes {sizes}; {args.epochs} epochs per point (first is warm-up)", flush=True)
    sweep(sizes, approaches, args.epochs, args.batch_size, args.seed, args.json,
          log=lambda line: print(line, flush=True))
    print(f"whole sweep: {(time.perf_counter() - start) / 60:.1f} minutes")
    return 0


# --------------------------------------------------------------------------------------------- growth fits


#: Memory budgets of the verdicts, in GB (decimal, as :data:`utils.memory.GB`).
BUDGETS_GB = (8, 16, 64)


@dataclass(frozen=True)
class LinearFit:
    """``value = intercept + slope * n``, least squares over the measured points.

    Attributes:
        intercept: value at ``n = 0``.
        slope: growth per document.
        sizes: the measured ``n``.
        values: the measured values.
    """

    intercept: float
    slope: float
    sizes: tuple[int, ...]
    values: tuple[float, ...]

    def predict(self, n: float | np.ndarray) -> float | np.ndarray:
        """Return the fitted value at ``n`` documents."""
        return self.intercept + self.slope * np.asarray(n, dtype=float) if np.ndim(n) else \
            self.intercept + self.slope * float(n)

    @property
    def largest_measured(self) -> int:
        """The largest measured ``n``: predictions beyond it are extrapolation."""
        return max(self.sizes)


def fit_line(sizes: Sequence[float], values: Sequence[float]) -> LinearFit:
    """Fit ``intercept + slope * n`` to the points by least squares.

    Raises:
        ValueError: fewer than two distinct sizes, or lengths differ.
    """
    if len(sizes) != len(values):
        raise ValueError(f"{len(sizes)} sizes but {len(values)} values")
    if len(set(sizes)) < 2:
        raise ValueError(f"need at least two distinct sizes to fit a line, got {sorted(set(sizes))}")
    slope, intercept = np.polyfit(np.asarray(sizes, dtype=float), np.asarray(values, dtype=float), 1)
    return LinearFit(float(intercept), float(slope), tuple(int(s) for s in sizes), tuple(float(v) for v in values))


def load_sweep(path: str | Path) -> list[dict[str, Any]]:
    """Read the JSON list written by ``--json``."""
    return json.loads(Path(path).read_text())


def approaches_in(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """Return the approaches of ``results`` in the order they first appear."""
    return list(dict.fromkeys(r["approach"] for r in results))


def series(results: Iterable[Mapping[str, Any]], approach: str, key: str) -> tuple[list[int], list[float]]:
    """Return ``(sizes, values)`` of ``key`` for ``approach``, sorted by size, skipping missing values."""
    points = sorted((r["train_size"], r[key]) for r in results if r["approach"] == approach and r.get(key) is not None)
    return [p[0] for p in points], [float(p[1]) for p in points]


#: Written by ``bench/vocabulary_growth.py``: the vocabulary growth of the real corpora at hand.
VOCABULARY_JSON = REPO_ROOT / "results" / "vocabulary_growth.json"


@dataclass(frozen=True)
class VocabularyGrowth:
    """Distinct 1–2-grams of the first ``n`` documents of a corpus: Heaps' law over their tokens.

    Attributes:
        law: ``distinct 1–2-grams = k · tokens^beta``, fitted on the corpus.
        tokens_per_document: the corpus's mean number of word tokens per document.
        corpus: what the law was measured on.
    """

    law: HeapsLaw
    tokens_per_document: float
    corpus: str

    def ngrams(self, n: float | np.ndarray) -> float | np.ndarray:
        """Return the predicted distinct 1–2-grams of ``n`` documents."""
        return self.law.predict(self.tokens_per_document * np.asarray(n, dtype=float))


def imdb_vocabulary(path: str | Path = VOCABULARY_JSON) -> VocabularyGrowth:
    """Return IMDB's measured vocabulary growth (the sweep's corpus) from ``bench/vocabulary_growth.py``'s JSON."""
    record = next(r for r in json.loads(Path(path).read_text())["corpora"] if r["corpus"] == "imdb")
    last = record["points"][-1]
    return VocabularyGrowth(HeapsLaw(**record["heaps_ngrams"]), last["tokens"] / last["documents"],
                            f"IMDB, {record['documents']:,} reviews")


@dataclass(frozen=True)
class VectorizingFit:
    """Peak RSS of in-memory vectorizing: ``start + per_document · n + per_ngram · V(n)``.

    The texts and the matrix grow with the documents, the vectorizer's dictionary
    with the distinct 1–2-grams ``V(n)`` (:class:`VocabularyGrowth`). The two
    rates are fitted, non-negative, to the measured growth above ``start``.

    Attributes:
        start: MB the process holds before it reads anything (median over the points).
        per_document: MB per document.
        per_ngram: MB per distinct 1–2-gram.
        vocabulary: the corpus's vocabulary growth.
        sizes: the measured ``n``.
        values: the measured peaks, MB.
    """

    start: float
    per_document: float
    per_ngram: float
    vocabulary: VocabularyGrowth
    sizes: tuple[int, ...]
    values: tuple[float, ...]

    def predict(self, n: float | np.ndarray) -> float | np.ndarray:
        """Return the predicted peak RSS in MB for ``n`` documents."""
        n = np.asarray(n, dtype=float)
        predicted = self.start + self.per_document * n + self.per_ngram * self.vocabulary.ngrams(n)
        return predicted if predicted.ndim else float(predicted)

    @property
    def largest_measured(self) -> int:
        """The largest measured ``n``: predictions beyond it are extrapolation."""
        return max(self.sizes)


def fit_vectorizing(sizes: Sequence[float], values: Sequence[float], start: float,
                    vocabulary: VocabularyGrowth) -> VectorizingFit:
    """Fit :class:`VectorizingFit` to measured peaks by non-negative least squares on their growth above ``start``.

    Raises:
        ValueError: fewer than two distinct sizes, or lengths differ.
    """
    if len(sizes) != len(values):
        raise ValueError(f"{len(sizes)} sizes but {len(values)} values")
    if len(set(sizes)) < 2:
        raise ValueError(f"need at least two distinct sizes to fit, got {sorted(set(sizes))}")
    n = np.asarray(sizes, dtype=float)
    design = np.column_stack([n, vocabulary.ngrams(n)])
    (per_document, per_ngram), _ = scipy.optimize.nnls(design, np.asarray(values, dtype=float) - start)
    return VectorizingFit(start, float(per_document), float(per_ngram), vocabulary, tuple(int(s) for s in sizes),
                          tuple(float(v) for v in values))


def fit_growth(results: Sequence[Mapping[str, Any]],
               vocabulary: VocabularyGrowth | None = None) -> dict[str, dict[str, LinearFit | VectorizingFit]]:
    """Fit memory (``peak_rss_mb``) and time per epoch (``epoch_median_seconds``; the vectorizing step's
    ``seconds``) against training-set size, per approach.

    Args:
        results: the sweep's records.
        vocabulary: the corpus's vocabulary growth; given, the vectorizing step's memory is a
            :class:`VectorizingFit` (its dictionary grows as Heaps' law says) instead of a line.

    Returns:
        ``{approach: {"memory": fit, "time": LinearFit}}`` for each approach measured at two or more sizes.
    """
    fits: dict[str, dict[str, LinearFit | VectorizingFit]] = {}
    for approach in approaches_in(results):
        time_key = "seconds" if approach == VECTORIZING else "epoch_median_seconds"
        sizes, memory = series(results, approach, "peak_rss_mb")
        if len(set(sizes)) < 2:
            continue
        memory_fit = (fit_vectorizing(sizes, memory, vectorizing_start_mb(results), vocabulary)
                      if approach == VECTORIZING and vocabulary is not None else fit_line(sizes, memory))
        fits[approach] = {"memory": memory_fit, "time": fit_line(*series(results, approach, time_key))}
    return fits


def vectorizing_start_mb(results: Iterable[Mapping[str, Any]]) -> float:
    """Return the median starting RSS of the vectorizing step's processes (what is not the step's own memory)."""
    starts = [r["start_rss_mb"] for r in results if r["approach"] == VECTORIZING]
    if not starts:
        raise ValueError(f"no {VECTORIZING!r} points in the results")
    return float(np.median(starts))


#: The approach whose training memory is a fixed-width row per document (20,000 float32 columns, however
#: short the text): it grows with documents, every other approach's with what the documents hold.
DENSE = "dense_in_memory"


def required_mb(approach: str, n: float, fits: Mapping[str, Mapping[str, LinearFit | VectorizingFit]],
                vectorizing_start: float, sweep_documents: float | None = None) -> float:
    """Return the predicted peak RSS in MB of ``approach`` on ``n`` documents.

    For the approaches that vectorize in memory first (all but the streaming one
    and the vectorizing step itself), the vectorizing step's growth is added.

    Args:
        sweep_documents: the number of the sweep's documents that hold as many tokens as the ``n``
            (default ``n``). The texts, the dictionary, the sparse matrix and the streaming cache grow with
            tokens, so every fit is read there, except the dense matrix's training line (:data:`DENSE`),
            which is read at ``n``.
    """
    tokens_n = n if sweep_documents is None else sweep_documents
    need = float(fits[approach]["memory"].predict(n if approach == DENSE else tokens_n))
    if approach not in (STREAMING, VECTORIZING) and VECTORIZING in fits:
        need += float(fits[VECTORIZING]["memory"].predict(tokens_n)) - vectorizing_start
    return need


@dataclass(frozen=True)
class Prediction:
    """One row of the extrapolation table.

    Attributes:
        dataset: registry name.
        documents: training documents.
        approach: the sweep's approach name.
        peak_gb: predicted peak RSS in GB.
        fits: budget in GB -> whether ``peak_gb`` fits in it.
        epoch_seconds: predicted seconds per epoch.
        extrapolated: a size the memory was predicted at lies beyond the largest measured size.
        sweep_documents: the number of the sweep's documents the memory was predicted at: ``documents``, or
            as many as hold the corpus's tokens (:func:`extrapolate`'s ``tokens_per_document``).
    """

    dataset: str
    documents: int
    approach: str
    peak_gb: float
    fits: dict[int, bool]
    epoch_seconds: float
    extrapolated: bool
    sweep_documents: float


def extrapolate(results: Sequence[Mapping[str, Any]], corpora: Mapping[str, int],
                budgets_gb: Sequence[int] = BUDGETS_GB, vocabulary: VocabularyGrowth | None = None,
                tokens_per_document: Mapping[str, float] | None = None) -> list[Prediction]:
    """Predict peak memory and time per epoch of every trained approach on every corpus.

    Args:
        results: the sweep's results (must include the vectorizing step).
        corpora: dataset name -> number of training documents (e.g. from ``REGISTRY[...].train_size``).
        budgets_gb: memory budgets of the verdicts.
        vocabulary: the sweep corpus's vocabulary growth, passed to :func:`fit_growth` (the vectorizing
            step's shape).
        tokens_per_document: dataset name -> its mean tokens per document. Given, memory is predicted at the
            number of the sweep's documents that hold as many tokens
            (``documents * tokens_per_document / vocabulary.tokens_per_document``): the texts, the sparse
            matrix and the dictionary grow with tokens, not documents (the dense matrix does not:
            :func:`required_mb`). Time per epoch stays at ``documents``: an epoch takes one step per batch of
            documents, whatever their length. Needs ``vocabulary``.

    Returns:
        One :class:`Prediction` per corpus and approach (the vectorizing step is folded into the others).

    Raises:
        ValueError: ``tokens_per_document`` without ``vocabulary``, or without a corpus of ``corpora``.
    """
    if tokens_per_document is not None:
        if vocabulary is None:
            raise ValueError("tokens_per_document needs the sweep corpus's vocabulary (its tokens per document)")
        missing = sorted(set(corpora) - set(tokens_per_document))
        if missing:
            raise ValueError(f"tokens_per_document has no entry for {missing}")
    fits = fit_growth(results, vocabulary)
    start = vectorizing_start_mb(results)
    rows = []
    for dataset, documents in corpora.items():
        sweep_documents = float(documents) if tokens_per_document is None else \
            documents * tokens_per_document[dataset] / vocabulary.tokens_per_document
        for approach, fit in fits.items():
            if approach == VECTORIZING:
                continue
            peak_gb = required_mb(approach, documents, fits, start, sweep_documents) / 1000
            rows.append(Prediction(dataset, documents, approach, peak_gb, {b: peak_gb <= b for b in budgets_gb},
                                   max(float(fit["time"].predict(documents)), 0.0),
                                   max(documents if approach == DENSE else 0, sweep_documents)
                                   > fit["memory"].largest_measured, sweep_documents))
    return rows


def standin_tokens_per_document(path: str | Path = REPO_ROOT / "results" / "standins.json") -> dict[str, float]:
    """Return each dataset's mean tokens per training document, as its stand-in holds them (``bench/standins.py``).

    A stand-in's text has the published bytes per row of its dataset (:mod:`utils.standins`), so this is
    the dataset's size in tokens as far as the published statistics tell it.
    """
    records = json.loads(Path(path).read_text())["standins"]
    return {r["dataset"]: r["points"][-1]["tokens"] / r["points"][-1]["documents"] for r in records}


def format_duration(seconds: float) -> str:
    """Return ``seconds`` as a short human duration: ``"42 s"``, ``"7.5 min"``, ``"3.2 h"``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_predictions(rows: Sequence[Prediction], budgets_gb: Sequence[int] = BUDGETS_GB) -> str:
    """Return the predictions as a fixed-width text table, extrapolated rows marked ``*``."""
    header = f"{'dataset':<17}{'documents':>10}  {'approach':<22}{'peak GB':>9}" + "".join(
        f"{f'{b} GB':>7}" for b in budgets_gb) + f"{'epoch':>10}"
    lines = [header, "-" * len(header)]
    for row in rows:
        mark = "*" if row.extrapolated else " "
        lines.append(f"{row.dataset:<17}{row.documents:>10,}{mark} {row.approach:<22}{row.peak_gb:>9.1f}" + "".join(
            f"{'yes' if row.fits[b] else 'no':>7}" for b in budgets_gb) + f"{format_duration(row.epoch_seconds):>10}")
    return "\n".join(lines)


#: The sweep's approaches that ``bench/seed_scale.py`` measured at full size, and that script's names for them.
MEASURED_AS = {"sparse_in_memory": "guide_in_memory", STREAMING: "streaming"}


@dataclass(frozen=True)
class Measured:
    """One extrapolated approach on one corpus next to what chapter 10 measured for it at full size.

    Attributes:
        dataset, documents, approach: as in :class:`Prediction`.
        gb_by_documents, gb_by_tokens: the predicted peak RSS in GB, read by documents and by tokens.
        gb_measured: the measured peak RSS in GB (``bench/seed_scale.py``'s ``peak_rss_mb`` / 1000).
        exceeded_budget: the measured run stopped at its memory budget, so it needed more than ``gb_measured``.
        epoch_predicted_s: the predicted seconds per epoch.
        epoch_measured_s: the measured seconds of the run's last epoch (after warm-up), ``None`` if it stopped.
    """

    dataset: str
    documents: int
    approach: str
    gb_by_documents: float
    gb_by_tokens: float
    gb_measured: float
    exceeded_budget: bool
    epoch_predicted_s: float
    epoch_measured_s: float | None


def against_measured(by_documents: Sequence[Prediction], by_tokens: Sequence[Prediction],
                     records: Sequence[Mapping[str, Any]]) -> list[Measured]:
    """Pair the predictions of the approaches chapter 10 measured (:data:`MEASURED_AS`) with its measurements.

    Args:
        by_documents, by_tokens: :func:`extrapolate`'s rows without and with ``tokens_per_document``.
        records: ``bench/seed_scale.py``'s records (``results/10_seed_scale.json``).

    Returns:
        One :class:`Measured` per corpus and approach that has a record; pairs without one are left out.
    """
    measured = {(r["dataset"], r["route"]): r for r in records}
    tokens = {(p.dataset, p.approach): p for p in by_tokens}
    rows = []
    for row in by_documents:
        record = measured.get((row.dataset, MEASURED_AS.get(row.approach)))
        if record is None or record["peak_rss_mb"] is None:
            continue
        completed = record["status"] == "completed"
        rows.append(Measured(row.dataset, row.documents, row.approach, row.peak_gb,
                             tokens[row.dataset, row.approach].peak_gb, record["peak_rss_mb"] / 1000, not completed,
                             row.epoch_seconds, record["details"]["epoch_seconds"][-1] if completed else None))
    return rows


def format_against_measured(rows: Sequence[Measured]) -> str:
    """Return :func:`against_measured`'s rows as a text table; ``>`` marks a run stopped at its budget."""
    header = (f"{'dataset':<17}{'documents':>10}  {'approach':<21}{'GB by documents':>16}{'GB by tokens':>13}"
              f"{'GB measured':>12}{'epoch predicted':>16}{'epoch measured':>15}")
    lines = [header, "-" * len(header)]
    for row in rows:
        stopped = ">" if row.exceeded_budget else " "
        epoch = "stopped" if row.epoch_measured_s is None else format_duration(row.epoch_measured_s)
        lines.append(f"{row.dataset:<17}{row.documents:>10,}  {row.approach:<21}{row.gb_by_documents:>16.1f}"
                     f"{row.gb_by_tokens:>13.1f}{stopped:>7}{row.gb_measured:>5.1f}"
                     f"{format_duration(row.epoch_predicted_s):>16}{epoch:>15}")
    return "\n".join(lines)


def plot_growth(results: Sequence[Mapping[str, Any]], fits: Mapping[str, Mapping[str, LinearFit | VectorizingFit]],
                quantity: str, ax=None):
    """Plot measured points and fitted lines of ``quantity`` (``"memory"`` or ``"time"``) for every approach.

    Memory is peak RSS in GB; time is seconds per epoch (the vectorizing step's one-off seconds for it).
    Returns the figure.
    """
    if quantity not in ("memory", "time"):
        raise ValueError(f"quantity must be 'memory' or 'time', got {quantity!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    handles, labels = [], []
    for i, (approach, fit) in enumerate(fits.items()):
        line = fit[quantity]
        scale = 1000 if quantity == "memory" else 1
        (points,) = ax.plot(line.sizes, [v / scale for v in line.values], "o", color=f"C{i}")
        grid = np.linspace(0, line.largest_measured, 50)
        (fitted,) = ax.plot(grid, line.predict(grid) / scale, "-", color=f"C{i}", alpha=0.6, lw=1)
        handles.append((points, fitted))  # one legend entry shows the marker on its line
        labels.append(approach)
    ax.set_xlabel("training documents")
    ax.set_ylabel("peak RSS, GB" if quantity == "memory" else "seconds per epoch (vectorizing: once)")
    shaped = any(isinstance(fit[quantity], VectorizingFit) for fit in fits.values())
    ax.set_title(("peak memory" if quantity == "memory" else "time per epoch") + " against training-set size: "
                 "measured (points), fitted a + b·n (lines" + ("; vectorizing: + Heaps' law)" if shaped else ")"))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, handler_map={tuple: HandlerTuple(ndivide=1)}, fontsize=8)
    return ax.figure


if __name__ == "__main__":
    sys.exit(main())
