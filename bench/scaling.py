"""The scaling sweep of chapter 07: each approach of chapters 01–05 at several training-set sizes.

For every size ``n`` the parent takes the first ``n`` documents of a fixed,
seeded pool of IMDB reviews, vectorizes them once (``NgramVectorizer``, as
``bench/pipelines.py`` does) and then runs every approach in a **fresh Python
process** of its own, so that each peak RSS belongs to that one point alone:

* the in-memory and batched approaches of chapters 01–04 go through
  ``bench.pipelines.run_in_subprocess`` (training only: the features are
  handed over precomputed, so their peak is the training phase's);
* ``in_memory_vectorizing`` is the step those approaches need first: read
  every text into a list and fit ``NgramVectorizer`` (``utils.memory_scaling``,
  no TensorFlow in that process);
* ``streaming_from_disk`` is chapter 05's pipeline from the files on disk:
  tokenize into the hashed on-disk cache, select features, train from the
  cache; its peak covers all of that, TensorFlow included.

The pool is the 25,000 IMDB training reviews (seeded order) followed by 20,000
of the 25,000 test reviews; the other 5,000 test reviews are held out and score
every point. Sizes up to 25,000 therefore train on training reviews only.
Time per epoch is the median epoch after the first (warm-up) epoch.

Usage::

    python bench/scaling.py --quick --json out.json   # 3 small sizes, 4 approaches: ~1.5 minutes on 2 cores
    python bench/scaling.py --json results/07_scaling_sweep.json   # the full sweep: ~21 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make ``utils`` and ``bench`` importable without installing
    sys.path.insert(0, str(REPO))

from bench.pipelines import machine, run_in_subprocess, run_script  # noqa: E402
from utils.memory import MB  # noqa: E402

RESULT_PREFIX = "SCALING-RESULT "
#: Approaches of chapters 01–04 measured through bench/pipelines.py.
BENCH_APPROACHES = ("dense_in_memory", "sparse_in_memory", "generator_sparse", "pydataset_sparse",
                    "tfdata_gather_spe16")
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
    from utils import datasets, streaming

    folder = datasets.fetch("imdb")
    train_paths, train_labels = streaming.aclimdb_files(folder, "train")
    test_paths, test_labels = streaming.aclimdb_files(folder, "test")
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
    from utils.streaming import read_document
    from utils.vectorize import NgramVectorizer

    start = time.perf_counter()
    vectorizer = NgramVectorizer()
    x_train = vectorizer.fit_transform([read_document(p) for p in paths], labels)
    x_test = vectorizer.transform([read_document(p) for p in test_paths])
    seconds = time.perf_counter() - start
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
    from utils.runtime import quiet_tensorflow, set_seed

    quiet_tensorflow()

    from utils import disk_datasets, hashed_pipeline, models, streaming, training
    from utils.hashed_tfidf import HashedTfidf
    from utils.memory import MemoryMonitor

    listed = json.loads((folder / "paths.json").read_text())
    train = streaming.DocumentFiles(tuple(listed["train"]), np.asarray(listed["train_labels"]), 2)
    clock = training.StepTimer()

    set_seed(seed)
    with tempfile.TemporaryDirectory(prefix="scaling-cache-") as workdir, MemoryMonitor(interval=0.02) as monitor:
        start = time.perf_counter()
        features = HashedTfidf(2)
        cache = hashed_pipeline.tokenize_to_caches(features, {"train": train}, workdir, seed=seed)["train"]
        hashed_pipeline.select_features(features, cache)
        prepare_seconds = time.perf_counter() - start
        model = models.build_mlp(features.num_selected, 2, sparse_input=True)
        batches = disk_datasets.cached_feature_batches(cache, features.transform_counts, features.num_selected,
                                                       batch_size, shuffle=True, seed=seed)
        model.fit(batches, epochs=epochs, verbose=0, callbacks=[clock])
    epoch_seconds = clock.epoch_seconds
    test_texts = [streaming.read_document(p) for p in listed["test"]]
    x_test = features.transform(test_texts)
    scores = model.evaluate(x_test, np.asarray(listed["test_labels"], np.float32), batch_size=1024, verbose=0,
                            return_dict=True)
    steps = -(-len(train) // batch_size)
    epoch = float(np.median(epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds))
    return {"pipeline": STREAMING, "ms_per_step": round(1000 * epoch / steps, 2),
            "epoch_seconds": [round(s, 2) for s in epoch_seconds], "prepare_seconds": round(prepare_seconds, 1),
            "peak_rss_mb": round(monitor.peak / MB, 1), "start_rss_mb": round(monitor.timeline.start / MB, 1),
            "test_accuracy": round(float(scores["accuracy"]), 4)}



def vectorizing_point(folder: Path) -> dict[str, Any]:
    """Measure reading every text and fitting ``NgramVectorizer`` in a fresh process (``utils.memory_scaling``)."""
    from utils import memory_scaling, streaming

    listed = json.loads((folder / "paths.json").read_text())
    train = streaming.DocumentFiles(tuple(listed["train"]), np.asarray(listed["train_labels"]), 2)
    (measured,) = memory_scaling.measure([("in_memory", train)])
    return {"pipeline": VECTORIZING, "peak_rss_mb": round(measured["peak_rss_bytes"] / MB, 1),
            "start_rss_mb": round(measured["start_rss_bytes"] / MB, 1), "seconds": round(measured["seconds"], 2)}


def run_streaming_in_subprocess(folder: Path, epochs: int, batch_size: int, seed: int,
                                timeout: float) -> dict[str, Any]:
    """Run :func:`streaming_child` in a fresh Python process and return its result (see ``run_script``)."""
    args = ["--child", str(folder), "--epochs", str(epochs), "--batch-size", str(batch_size), "--seed", str(seed)]
    return run_script(Path(__file__).resolve(), args, RESULT_PREFIX, STREAMING, timeout)


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
                    result = run_streaming_in_subprocess(folder, epochs, batch_size, seed, timeout=3600)
                else:
                    result = run_in_subprocess(approach, folder, epochs, batch_size, seed, timeout=3600)
                median = None
                if "epoch_seconds" in result:
                    times = result["epoch_seconds"]
                    median = round(float(np.median(times[1:] if len(times) > 1 else times)), 2)
                result.update(approach=approach, train_size=size, test_size=len(test_paths),
                              epoch_median_seconds=median, epochs=epochs, batch_size=batch_size, data=data,
                              machine=machine())
                results.append(result)
                log(f"  {approach}: peak {result['peak_rss_mb']:.0f} MB, epoch {median} s")
                if json_path is not None:
                    write_json(results, json_path)
    return results


def write_json(results: list[dict[str, Any]], path: Path) -> None:
    """Write ``results`` to ``path`` atomically (a partial file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    """Run the sweep (or, with ``--child``, the streaming pipeline of one point); return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {QUICK_SIZES} and approaches {', '.join(QUICK_APPROACHES)}")
    parser.add_argument("--sizes", help=f"comma-separated training-set sizes (default {FULL_SIZES})")
    parser.add_argument("--approaches", help="comma-separated subset of: " + ", ".join(APPROACHES))
    parser.add_argument("--epochs", type=int, default=2, help="epochs per point, the first being warm-up")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="write the results to this JSON file (after every point)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be >= 1")
    if args.child:
        print(RESULT_PREFIX + json.dumps(streaming_child(args.child, args.epochs, args.batch_size, args.seed)),
              flush=True)
        return 0
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
    print(f"{machine()}; sizes {sizes}; {args.epochs} epochs per point (first is warm-up)", flush=True)
    sweep(sizes, approaches, args.epochs, args.batch_size, args.seed, args.json,
          log=lambda line: print(line, flush=True))
    print(f"whole sweep: {(time.perf_counter() - start) / 60:.1f} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
