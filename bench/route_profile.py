"""Where the seconds of the series' tf-idf route go, stage by stage (chapter 11).

The route of chapter 04 (``bench.peers.mlp_gathered``, the race's ``ours_mlp_gathered``) builds the guide's
features with :class:`utils.vectorize.NgramVectorizer` in one call. Here the same computation runs one stage
at a time, each timed on its own, in a fresh process:

* ``read``: every training and test text into memory (files or CSV rows);
* ``tokenize``: the guide's analyzer (scikit-learn's word 1–2-grams) over every training text, its output
  dropped: what tokenizing alone costs;
* ``count``: ``CountVectorizer.fit_transform`` with the same settings (vocabulary and ``min_df``), *less*
  the ``tokenize`` seconds, since it tokenizes again as it counts;
* ``idf``: ``TfidfTransformer`` on those counts (smooth idf, rows to unit length);
* ``select``: ``SelectKBest(f_classif)``, the top 20,000;
* ``test_features``: the same four steps applied to the test texts (transform only);
* ``import_keras``: importing Keras (and with it TensorFlow);
* ``batches``: building chapter 04's ``tf.data`` pipeline and drawing one epoch of batches from it, alone;
* ``train``: ``fit``, epoch by epoch (drawing the batches included);
* ``evaluate``: the test accuracy of the final model.

``TfidfVectorizer`` is ``CountVectorizer`` followed by ``TfidfTransformer`` (scikit-learn's documentation of
``TfidfVectorizer`` says so), so the matrix is the one ``NgramVectorizer`` builds; the test file checks it.

Usage::

    python bench/route_profile.py --dataset imdb --json results/11_profile_imdb.json
    python bench/route_profile.py --dataset dbpedia --json results/11_profile_dbpedia.json  # the stand-in
    python bench/route_profile.py --dataset imdb --quick   # 2,000 documents: a check
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.feature_selection import SelectKBest, f_classif

from bench import peers
from utils.memory import MB, MemoryMonitor
from utils.processes import run_fresh, write_json
from utils.runtime import load_average, machine_summary, package_versions, quiet_tensorflow
from utils.sparse import sorted_csr
from utils.vectorize import MIN_DOCUMENT_FREQUENCY, NGRAM_RANGE, TOP_K

#: Documents of each split in a ``--quick`` profile.
QUICK_LIMIT = 2000
#: Stages in the order they run.
STAGES = ("read", "tokenize", "count", "idf", "select", "test_features", "import_keras", "batches", "train",
          "evaluate")


class StageFeatures:
    """The guide's features (:class:`utils.vectorize.NgramVectorizer`) built one timed stage at a time.

    Attributes:
        seconds: stage name -> seconds, filled in by :meth:`fit_transform` and :meth:`transform`.
    """

    def __init__(self, top_k: int = TOP_K) -> None:
        self.counter = CountVectorizer(ngram_range=NGRAM_RANGE, min_df=MIN_DOCUMENT_FREQUENCY, dtype=np.float32,
                                       strip_accents="unicode", decode_error="replace", analyzer="word")
        self.idf = TfidfTransformer()
        self.top_k = top_k
        self.selector: SelectKBest | None = None
        self.seconds: dict[str, float] = {}

    def fit_transform(self, texts: Sequence[str], labels: np.ndarray) -> sp.csr_matrix:
        """Fit every stage on the training texts, timing each; return their selected tf-idf matrix."""
        analyzer = self.counter.build_analyzer()
        start = time.perf_counter()
        for text in texts:
            analyzer(text)
        self.seconds["tokenize"] = time.perf_counter() - start
        start = time.perf_counter()
        counts = self.counter.fit_transform(texts)
        self.seconds["count"] = time.perf_counter() - start - self.seconds["tokenize"]
        start = time.perf_counter()
        x = self.idf.fit_transform(counts)
        self.seconds["idf"] = time.perf_counter() - start
        start = time.perf_counter()
        self.selector = SelectKBest(f_classif, k=min(self.top_k, x.shape[1]))
        x = sorted_csr(self.selector.fit_transform(x, labels))
        self.seconds["select"] = time.perf_counter() - start
        return x

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Return the selected tf-idf matrix of other texts; its time is the ``test_features`` stage."""
        if self.selector is None:
            raise RuntimeError("StageFeatures is not fitted yet: call fit_transform first")
        start = time.perf_counter()
        x = sorted_csr(self.selector.transform(self.idf.transform(self.counter.transform(texts))))
        self.seconds["test_features"] = time.perf_counter() - start
        return x


def profile_route(dataset: str, limit: int | None, epochs: int, seed: int, batch_size: int = 128,
                  steps_per_execution: int = 16) -> dict[str, Any]:
    """Run the tf-idf route on ``dataset`` one stage at a time (in this process); return the seconds of each.

    Returns:
        ``{"dataset", "train_documents", "test_documents", "classes", "seconds": {stage: s}, "epoch_seconds",
        "test_accuracy", "peak_rss_mb", "vocabulary"}``.
    """
    quiet_tensorflow()
    seconds: dict[str, float] = {}
    with MemoryMonitor(interval=0.05) as monitor:
        start = time.perf_counter()
        train, test = peers.race_streams(dataset, seed)
        if limit is not None:
            train, test = train.head(limit), test.head(limit)
        train_texts, y_train = peers.read_all(train)
        test_texts, y_test = peers.read_all(test)
        seconds["read"] = time.perf_counter() - start
        features = StageFeatures()
        x_train = features.fit_transform(train_texts, y_train)
        x_test = features.transform(test_texts)
        seconds.update(features.seconds)
        del train_texts, test_texts
        start = time.perf_counter()
        import keras

        from utils.models import build_mlp
        from utils.runtime import set_seed
        from utils.tfdata import gathered_dataset
        seconds["import_keras"] = time.perf_counter() - start
        classes = train.num_classes
        labels = peers.model_labels(y_train, classes)
        start = time.perf_counter()
        for _ in gathered_dataset(x_train, labels, batch_size, seed=seed):
            pass
        seconds["batches"] = time.perf_counter() - start
        set_seed(seed)
        model = build_mlp(x_train.shape[1], classes, sparse_input=True, steps_per_execution=steps_per_execution)
        epoch_seconds: list[float] = []

        class EpochSeconds(keras.callbacks.Callback):
            """Times every epoch of ``fit``."""

            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                epoch_seconds.append(time.perf_counter() - self.start)

        start = time.perf_counter()
        model.fit(gathered_dataset(x_train, labels, batch_size, seed=seed), epochs=epochs, shuffle=False, verbose=0,
                  callbacks=[EpochSeconds()])
        seconds["train"] = time.perf_counter() - start
        start = time.perf_counter()
        accuracy = model.evaluate(x_test, peers.model_labels(y_test, classes), batch_size=1024, verbose=0,
                                  return_dict=True)["accuracy"]
        seconds["evaluate"] = time.perf_counter() - start
    return {"dataset": dataset, "train_documents": int(x_train.shape[0]), "test_documents": int(x_test.shape[0]),
            "classes": classes, "vocabulary": len(features.counter.vocabulary_),
            "seconds": {stage: round(seconds[stage], 2) for stage in STAGES},
            "epoch_seconds": [round(s, 2) for s in epoch_seconds], "test_accuracy": round(float(accuracy), 4),
            "peak_rss_mb": round(monitor.peak / MB, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: profile the route in a fresh process; print the stages; write them with ``--json``."""
    parser = argparse.ArgumentParser(description="The series' tf-idf route, stage by stage, in a fresh process.")
    parser.add_argument("--dataset", choices=peers.DATASETS, default="imdb",
                        help="IMDB, or a stand-in of chapter 10 (written first if it is not there)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_LIMIT:,} documents of each split")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--json", type=Path, help="write the profile here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.dataset != "imdb":
        peers.ensure_standin(args.dataset, args.seed)
    load_at_start = load_average()
    profile = run_fresh(profile_route, args.dataset, QUICK_LIMIT if args.quick else None, args.epochs, args.seed)
    total = sum(profile["seconds"].values())
    for stage, seconds in profile["seconds"].items():
        print(f"{stage:<14}{seconds:>8.2f} s {seconds / total:>6.1%}")
    print(f"{'total':<14}{total:>8.2f} s; test accuracy {profile['test_accuracy']:.4f}, "
          f"peak {profile['peak_rss_mb']:,.0f} MB")
    if args.json:
        write_json(args.json, {**profile, "quick": args.quick, "seed": args.seed, "machine": machine_summary(),
                               "load_average_at_start": load_at_start,
                               "versions": package_versions()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
