"""The guide's four datasets at full size on one machine: every route, measured stage by stage (chapter 10).

For each stand-in corpus of :mod:`utils.standins` (AG News 120,000 training
rows, DBPedia 560,000, Yelp polarity 560,000, Amazon polarity 3,600,000; written
by ``bench/standins.py``), every route runs in a **fresh Python process** of its
own (:func:`utils.processes.run_fresh`) that samples its own RSS over time and
records the seconds of each stage:

* ``guide_in_memory``: the guide's route as written. ``read`` every training
  text into a list; ``tokenize_count`` (scikit-learn's ``TfidfVectorizer`` over
  word 1–2-grams, ``min_df=2``: its vocabulary dictionary holds every distinct
  n-gram until it is pruned); ``select`` (top 20,000 by ``f_classif``);
  ``train`` the guide's MLP on the sparse matrix (``fit``, batch size 128);
  ``test``.
* ``streaming``: chapter 05's route. ``tokenize_count`` reads the CSV in chunks
  and hashes each document's n-grams into the on-disk cache while counting
  document frequencies (reading is part of it); ``select`` streams the cache
  for the ANOVA statistics; ``train`` the same MLP from ``tf.data`` over the
  cache; ``test`` streams the test file.
* ``sepcnn_from_disk`` (Amazon only: the appendix's own case): ``adapt`` a
  ``TextVectorization`` on the first rows; ``train`` the sepCNN from
  length-bucketed batches read from disk for a fixed number of steps, enough for
  steady throughput and flat memory; its full epoch time is **projected** from
  the measured ms per step (``projected_epoch_seconds``); ``test`` on the first
  test rows.
* ``sgd_out_of_core`` and ``fasttext``: chapter 07's peers (``bench.peers``)
  on the same files; their featurizing is fused with training
  (``features_and_train``), fastText's file writing is ``write_file``.

**The memory budget.** Every child watches its own RSS (every 0.1 s); when it
crosses ``--budget-gb`` (default 16 GB of this 24 GB machine) it writes its
record with ``status: "exceeded_budget"`` and the stage it was in
(``stage_at_limit``), and exits at once: a route that needs more memory than
the budget fails cleanly instead of swapping the machine to a halt.

**The figures.** ``seconds``: from the start of the route in its child (its imports included) to its test score;
``docs_per_s``: training documents processed per second of the stages before
``test`` (``rows_train`` × epochs or passes, features included); ``peak_rss_mb``
the largest RSS sampled; ``timeline``: the RSS samples (thinned), with a mark
at the start of each stage.

Usage::

    python bench/seed_scale.py --quick --json /tmp/seed_scale.json   # 1 % stand-ins of AG News and Amazon: ~2 min
    python bench/seed_scale.py --json results/10_seed_scale.json     # all four at full size: hours on 2 cores
    python bench/seed_scale.py --json results/10_seed_scale.json --datasets amazon_polarity --resume
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from utils.runtime import machine_summary, package_versions, quiet_tensorflow, set_seed

quiet_tensorflow()  # before TensorFlow loads, here and in the child processes (they inherit the setting)


from bench import peers
from bench.standins import OUT_DIR, QUICK_SCALE, ensure_written
from utils import standins
from utils.memory import MB, MemoryMonitor, rss_bytes
from utils.processes import ChildProcessError, run_fresh, write_json
from utils.streaming import ZhangCsvRows

ROUTES = ("guide_in_memory", "streaming", "sepcnn_from_disk", "sgd_out_of_core", "fasttext")
#: The route that runs on the Amazon stand-in only (the appendix trains its sepCNN on Amazon reviews).
SEPCNN_DATASET = "amazon_polarity"
BATCH_SIZE = 128
BUDGET_GB = 16.0
QUICK_DATASETS = ("ag_news", "amazon_polarity")


class Stages:
    """The stages of one route: their seconds, the one running now, and a mark on the RSS timeline at each start."""

    def __init__(self, monitor: MemoryMonitor) -> None:
        self.monitor = monitor
        self.seconds: dict[str, float] = {}
        self.current = "start"  # imports and set-up, before the first stage

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name``."""
        self.current = name
        self.monitor.mark(name)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 2)


def streamed_accuracy(model, stream: ZhangCsvRows, featurize: Callable[[list[str]], Any]) -> float:
    """Accuracy of ``model`` on a CSV file read chunk by chunk, each chunk featurized by ``featurize``."""
    correct = total = 0
    for texts, labels in stream.chunks():
        scores = model.predict(featurize(texts), batch_size=1024, verbose=0)
        correct += int((peers.predicted_classes(scores) == labels).sum())
        total += len(labels)
    return correct / total


def guide_in_memory(train: ZhangCsvRows, test: ZhangCsvRows, stages: Stages, *, epochs: int,
                    seed: int, **_: Any) -> dict[str, Any]:
    """The guide's route: all texts in memory, ``TfidfVectorizer`` + ``SelectKBest``, ``fit`` on the sparse matrix."""
    from sklearn.feature_selection import SelectKBest, f_classif

    from utils import models
    from utils.callbacks import StepTimer
    from utils.sparse import sorted_csr
    from utils.vectorize import NgramVectorizer

    vectorizer = NgramVectorizer()
    with stages.stage("read"):
        texts, labels = peers.read_all(train)
    with stages.stage("tokenize_count"):
        x_train = vectorizer.tfidf.fit_transform(texts)
    with stages.stage("select"):
        vectorizer.selector = SelectKBest(f_classif, k=min(vectorizer.top_k, x_train.shape[1]))
        x_train = sorted_csr(vectorizer.selector.fit_transform(x_train, labels))
    clock = StepTimer()
    with stages.stage("train"):
        set_seed(seed)
        model = models.build_mlp(vectorizer.num_features, train.num_classes, sparse_input=True)
        model.fit(x_train, peers.model_labels(labels, train.num_classes), epochs=epochs, batch_size=BATCH_SIZE,
                  verbose=0, callbacks=[clock])
    with stages.stage("test"):
        accuracy = streamed_accuracy(model, test, vectorizer.transform)
    return {"test_accuracy": accuracy, "passes": epochs, "ms_per_step": round(clock.ms_per_step(), 2),
            "details": {"vocabulary_after_min_df": vectorizer.vocabulary_size, "stored_values": int(x_train.nnz),
                        "epoch_seconds": [round(s, 1) for s in clock.epoch_seconds]}}


def streaming(train: ZhangCsvRows, test: ZhangCsvRows, stages: Stages, *, epochs: int, seed: int,
              **_: Any) -> dict[str, Any]:
    """Chapter 05's route: hashed tf-idf with streamed idf and selection, cached features, ``tf.data`` over files."""
    from utils import hashed_tfidf, models, tfdata
    from utils.callbacks import StepTimer

    features = hashed_tfidf.HashedTfidf(train.num_classes)
    clock = StepTimer()
    with tempfile.TemporaryDirectory(prefix="seed-scale-cache-") as workdir:
        with stages.stage("tokenize_count"):
            cache = hashed_tfidf.tokenize_to_caches(features, {"train": train}, workdir, seed=seed)["train"]
        with stages.stage("select"):
            hashed_tfidf.select_features(features, cache)
        with stages.stage("train"):
            set_seed(seed)
            model = models.build_mlp(features.num_features, train.num_classes, sparse_input=True)
            batches = tfdata.cached_feature_batches(cache, features.transform_counts, features.num_features,
                                                    BATCH_SIZE, shuffle=True, seed=seed)
            model.fit(batches, epochs=epochs, shuffle=False, verbose=0, callbacks=[clock])  # the batches are shuffled
        cache_mb = cache.nbytes / MB
    with stages.stage("test"):
        accuracy = streamed_accuracy(model, test, features.transform)
    return {"test_accuracy": accuracy, "passes": epochs, "ms_per_step": round(clock.ms_per_step(), 2),
            "details": {"cache_mb": round(cache_mb, 1), "epoch_seconds": [round(s, 1) for s in clock.epoch_seconds]}}


def sepcnn_from_disk(train: ZhangCsvRows, test: ZhangCsvRows, stages: Stages, *, rows_train: int, seed: int,
                     sepcnn_steps: int, adapt_rows: int, test_rows: int, **_: Any) -> dict[str, Any]:
    """The appendix's case: the sepCNN from batches read from disk, for ``sepcnn_steps`` steps; epoch time projected."""
    import tensorflow as tf

    from utils import models, sequence, tfdata
    from utils.batching import steps_per_epoch
    from utils.callbacks import StepTimer

    def labels_as(tokens: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Float labels for the sigmoid unit of two classes, class indices for a softmax."""
        return tokens, tf.cast(labels, tf.float32) if train.num_classes == 2 else labels

    vectorizer = sequence.sequence_vectorizer()
    with stages.stage("adapt"):
        vectorizer.adapt(tfdata.text_dataset(train.head(adapt_rows)).map(lambda text, label: text).batch(512))
    rows = rows_train
    chunk = max(1, sepcnn_steps // 4)
    clock = StepTimer()
    with stages.stage("train"):
        set_seed(seed)
        model = models.build_sepcnn(vectorizer.vocabulary_size(), train.num_classes)
        batches = sequence.length_bucketed_batches(train, vectorizer, BATCH_SIZE, rows, shuffle_buffer=10_000,
                                                   seed=seed).repeat()
        model.fit(batches.map(labels_as), epochs=4, steps_per_epoch=chunk, shuffle=False, verbose=0,
                  callbacks=[clock])
    ms = clock.ms_per_step()
    with stages.stage("test"):
        test_batches = sequence.length_bucketed_batches(test.head(test_rows), vectorizer, BATCH_SIZE, test_rows,
                                                        window_batches=1).map(labels_as)
        accuracy = float(model.evaluate(test_batches, verbose=0, return_dict=True)["accuracy"])
    return {"test_accuracy": accuracy, "passes": 4 * chunk * BATCH_SIZE / rows, "ms_per_step": round(ms, 2),
            "details": {"steps": 4 * chunk, "adapt_rows": adapt_rows, "test_rows": test_rows,
                        "steps_per_epoch": steps_per_epoch(rows, BATCH_SIZE),
                        "projected_epoch_seconds": round(steps_per_epoch(rows, BATCH_SIZE) * ms / 1000, 1),
                        "ms_per_step_each_part": [round(v, 1) for v in clock.ms_per_step_each_epoch()]}}


def sgd_out_of_core(train: ZhangCsvRows, test: ZhangCsvRows, stages: Stages, *, sgd_passes: int, seed: int,
                    **_: Any) -> dict[str, Any]:
    """Chapter 07's out-of-core peer: hashed n-grams and ``SGDClassifier.partial_fit``, streamed."""
    with stages.stage("features_and_train"):
        result = peers.sgd_out_of_core(train, test, passes=sgd_passes, seed=seed)
    # The peer scores the test file after every pass, outside its own clock: take those seconds out.
    stages.seconds["features_and_train"] = round(result.seconds, 2)
    return {"test_accuracy": result.test_accuracy, "passes": sgd_passes, "details": {"trace": result.trace}}


def fasttext(train: ZhangCsvRows, test: ZhangCsvRows, stages: Stages, *, fasttext_epochs: int, seed: int,
             **_: Any) -> dict[str, Any]:
    """Chapter 07's fastText peer: its training file written from the CSV, then one run of ``fasttext_epochs``."""
    missing = peers.missing_package("fasttext")
    if missing:
        raise ModuleNotFoundError(missing)
    with stages.stage("features_and_train"):
        result = peers.fasttext_supervised(train, test, epochs=(fasttext_epochs,), seed=seed)
    file_seconds = result.details["file_seconds"]
    stages.seconds = {"write_file": file_seconds, "features_and_train": round(result.seconds - file_seconds, 2)}
    return {"test_accuracy": result.test_accuracy, "passes": fasttext_epochs, "details": result.details}


ROUTE_FUNCTIONS = {"guide_in_memory": guide_in_memory, "streaming": streaming, "sepcnn_from_disk": sepcnn_from_disk,
                   "sgd_out_of_core": sgd_out_of_core, "fasttext": fasttext}


def _record(base: dict[str, Any], monitor: MemoryMonitor, stages: Stages, started: float,
            **fields: Any) -> dict[str, Any]:
    """A JSON-ready record of a route: ``base``, the memory and the stages, and ``fields``."""
    timeline = monitor.timeline.thinned(600)
    return {**base, "peak_rss_mb": round(monitor.peak / MB, 1), "start_rss_mb": round(monitor.timeline.start / MB, 1),
            "seconds": round(time.perf_counter() - started, 1), "stages": dict(stages.seconds),
            "timeline": {"times": [round(t, 2) for t in timeline.times],
                         "rss_mb": [round(r / MB, 1) for r in timeline.rss],
                         "marks": [[round(t, 2), label] for t, label in timeline.marks]}, **fields}


def run_route(route: str, dataset: str, train_csv: str, test_csv: str, result_path: str, budget_mb: float,
              options: dict[str, Any]) -> None:
    """Child side: run one route on one stand-in, under the memory budget; write its record to ``result_path``.

    On crossing ``budget_mb`` the watchdog writes the record (``exceeded_budget``, the stage it was in) and ends
    the process at once with ``os._exit``, so no stage runs on.
    """
    num_classes = standins.STANDINS[dataset].num_classes
    train, test = ZhangCsvRows(Path(train_csv), num_classes), ZhangCsvRows(Path(test_csv), num_classes)
    base = {"dataset": dataset, "route": route, "budget_mb": budget_mb}
    with MemoryMonitor(interval=0.1) as monitor:
        stages = Stages(monitor)
        started = time.perf_counter()
        lock = threading.Lock()

        def watch() -> None:
            while True:
                time.sleep(0.1)
                rss = rss_bytes()
                if rss > budget_mb * MB:
                    with lock:
                        monitor.mark("budget exceeded")
                        write_json(result_path, _record(base, monitor, stages, started, status="exceeded_budget",
                                                        stage_at_limit=stages.current, test_accuracy=None,
                                                        docs_per_s=None))
                    os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
        outcome = ROUTE_FUNCTIONS[route](train, test, stages, **options)
    rows = options["rows_train"]
    featurize_train = sum(s for name, s in stages.seconds.items() if name != "test")
    with lock:
        write_json(result_path, _record(
            base, monitor, stages, started, status="completed", stage_at_limit=None,
            test_accuracy=round(outcome.pop("test_accuracy"), 4),
            docs_per_s=round(rows * outcome["passes"] / featurize_train, 1), **outcome))


def measure(dataset: str, route: str, files: dict[str, Any], folder: Path, budget_mb: float,
            options: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one route in a fresh process; return its record (``failed``, with the error, if it raised)."""
    with tempfile.TemporaryDirectory(prefix="seed-scale-") as tmp:
        result_path = Path(tmp) / "record.json"
        error = None
        try:
            run_fresh(run_route, route, dataset, str(folder / "train.csv"), str(folder / "test.csv"),
                      str(result_path), budget_mb, options, timeout=timeout)
        except ChildProcessError as failed:
            error = str(failed)
        if result_path.is_file():
            record = json.loads(result_path.read_text())
        else:
            last = error.strip().splitlines()[-1] if error else "no record"
            record = {"dataset": dataset, "route": route, "status": "failed", "error": last[:500],
                      "stage_at_limit": None, "peak_rss_mb": None, "seconds": None, "docs_per_s": None,
                      "test_accuracy": None}
    return {**record, "rows_train": files["train"]["rows"], "rows_test": files["test"]["rows"],
            "options": options, "machine": machine_summary(), "versions": package_versions()}


def route_options(dataset: str, rows_train: int, quick: bool) -> dict[str, Any]:
    """Epochs, passes and steps of every route for one stand-in."""
    return {"rows_train": rows_train, "epochs": 2, "seed": 0, "sgd_passes": 2, "fasttext_epochs": 5,
            "sepcnn_steps": 40 if quick else 800, "adapt_rows": min(rows_train, 200_000),
            "test_rows": 2_000 if quick else 20_000}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run every route on every stand-in, print one line each, write the JSON after each record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SCALE * 100:.0f}%% stand-ins of {' and '.join(QUICK_DATASETS)} "
                             "(a CI check, not figures)")
    parser.add_argument("--json", type=Path, help="write the records here (replaced whole after each record)")
    parser.add_argument("--datasets", nargs="+", choices=sorted(standins.STANDINS), help="these stand-ins only")
    parser.add_argument("--routes", nargs="+", choices=ROUTES, help="these routes only")
    parser.add_argument("--resume", action="store_true", help="keep the records of --json and skip what they cover")
    parser.add_argument("--budget-gb", type=float, default=BUDGET_GB, help="memory budget of every child")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder of the stand-ins")
    parser.add_argument("--timeout-hours", type=float, default=4.0, help="longest a child may run")
    args = parser.parse_args(argv)
    scale = QUICK_SCALE if args.quick else 1.0
    out = args.out / "quick" if args.quick else args.out
    names = args.datasets or list(QUICK_DATASETS if args.quick else standins.STANDINS)
    records: list[dict[str, Any]] = []
    if args.resume and args.json and args.json.is_file():
        records = json.loads(args.json.read_text())["records"]
    done = {(r["dataset"], r["route"]) for r in records}
    for dataset in names:
        meta = ensure_written(dataset, out, scale, seed=0)
        for route in args.routes or ROUTES:
            if (dataset, route) in done or (route == "sepcnn_from_disk" and dataset != SEPCNN_DATASET):
                continue
            options = route_options(dataset, meta["files"]["train"]["rows"], args.quick)
            record = measure(dataset, route, meta["files"], out / dataset, args.budget_gb * 1024, options,
                             args.timeout_hours * 3600)
            records.append(record)
            print(f"{dataset} {route}: {record['status']}"
                  + (f" at {record['stage_at_limit']}" if record["stage_at_limit"] else "")
                  + (f", peak {record['peak_rss_mb']:,.0f} MB" if record["peak_rss_mb"] else "")
                  + (f", {record['seconds']:,.0f} s" if record["seconds"] else "")
                  + (f", {record['docs_per_s']:,.0f} docs/s" if record["docs_per_s"] else "")
                  + (f", test accuracy {record['test_accuracy']:.4f}" if record["test_accuracy"] is not None else "")
                  + (f" ({record['error']})" if record.get("error") else ""), flush=True)
            if args.json:
                write_json(args.json, {"machine": machine_summary(), "versions": package_versions(),
                                       "quick": args.quick, "budget_gb": args.budget_gb, "records": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
