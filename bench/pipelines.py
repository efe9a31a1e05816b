"""Benchmark every input pipeline of chapters 01–04 on the same data, model, seed and epochs.

Each pipeline trains the guide's MLP in its own fresh Python process
(:func:`utils.processes.run_fresh`), so that each peak RSS belongs to that
pipeline alone; the parent vectorizes the data once and hands it to the
children as ``.npz`` files. Speed is the series' ms per step
(:func:`utils.callbacks.ms_per_step`: median over the epochs after the first
of epoch training time over steps), with each epoch's figure kept to show the
spread; samples/s is the training samples of an epoch over that many steps. "Compute floor" rows
train on one pre-built batch repeated: the cost of the train step itself,
with no input work at all. The second half of this module reads, tabulates
and plots the results (chapter 04).

Usage::

    python bench/pipelines.py                  # full IMDB training set (25,000 reviews), ~15 min on 2 cores
    python bench/pipelines.py --quick          # 2,000 reviews, 2 epochs, under 2 minutes
    python bench/pipelines.py --json out.json  # also write the results as a JSON list
    python bench/pipelines.py --train-size 5000 --pipelines dense_in_memory,tfdata_gather_spe16
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.runtime import machine_summary, package_versions, quiet_tensorflow, set_seed

quiet_tensorflow()  # before TensorFlow loads, here and in the child processes (they inherit the setting)

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from matplotlib.figure import Figure

from utils import batching, datasets, pydataset, sparse, tfdata
from utils.callbacks import StepTimer
from utils.memory import MB, MemoryMonitor
from utils.models import build_mlp
from utils.processes import run_fresh, write_json
from utils.vectorize import vectorize_texts

Result = dict[str, Any]


@dataclass(frozen=True)
class Pipeline:
    """One way of feeding the model.

    Attributes:
        name: identifier used on the command line and in the results.
        description: what it is, in a few words.
        chapter: the chapter that teaches it.
        sparse_model: the model takes ``tf.SparseTensor`` (``build_mlp(sparse_input=True)``).
        holds_dense_matrix: it materialises the full dense training matrix.
        steps_per_execution: train steps per call into the compiled function.
        floor: a compute-floor measurement rather than a pipeline.
    """

    name: str
    description: str
    chapter: str
    sparse_model: bool
    holds_dense_matrix: bool = False
    steps_per_execution: int = 1
    floor: bool = False


PIPELINES = [
    Pipeline("dense_in_memory", "model.fit(dense array): the whole matrix densified first", "01", False,
             holds_dense_matrix=True),
    Pipeline("sparse_in_memory", "the guide's route: model.fit(scipy CSR), densified per batch by Keras", "01",
             False),
    Pipeline("generator_dense", "Python generator, batch densified", "02", False),
    Pipeline("generator_sparse", "Python generator, CSR batches", "02", True),
    Pipeline("pydataset_dense", "PyDataset, batch densified, 1 worker", "03", False),
    Pipeline("pydataset_dense_2_threads", "PyDataset, batch densified, 2 worker threads", "03", False),
    Pipeline("pydataset_sparse", "PyDataset returning tf.SparseTensor", "03", True),
    Pipeline("tfdata_from_generator", "tf.data from_generator (sparse, output_signature)", "04", True),
    Pipeline("tfdata_sparse_slices", "tf.data from_tensor_slices(SparseTensor), shuffle, batch", "04", True),
    Pipeline("tfdata_gather", "tf.data: shuffle row ids, gather CSR rows in graph", "04", True),
    Pipeline("tfdata_gather_spe16", "tf.data gather + steps_per_execution=16", "04", True,
             steps_per_execution=16),
    Pipeline("floor_dense", "compute floor: one dense batch, repeated", "-", False, floor=True),
    Pipeline("floor_sparse", "compute floor: one sparse batch, repeated", "-", True, floor=True),
    Pipeline("floor_sparse_spe16", "compute floor: one sparse batch, steps_per_execution=16", "-", True,
             steps_per_execution=16, floor=True),
]
BY_NAME = {p.name: p for p in PIPELINES}


def prepare_data(folder: Path, num_train: int | None, num_test: int | None, seed: int) -> dict[str, Any]:
    """Vectorize IMDB once and save it for the child processes.

    Trains on the whole IMDB training set (train and validation splits of
    ``utils.datasets.load``, 25,000 reviews) or a seeded subset of
    ``num_train``; scores on the test set or a seeded subset of ``num_test``.

    Returns:
        A description of the data: sizes, features, stored values, seconds to vectorize.
    """
    data = datasets.load("imdb")
    texts = data.train_texts + data.val_texts
    labels = np.concatenate([data.train_labels, data.val_labels])
    rng = np.random.default_rng(seed)
    train = rng.permutation(len(texts))[:num_train] if num_train else np.arange(len(texts))
    test = rng.permutation(len(data.test_texts))[:num_test] if num_test else np.arange(len(data.test_texts))
    _, x_train, (x_test,), seconds = vectorize_texts([texts[i] for i in train], labels[train],
                                                     [data.test_texts[i] for i in test])
    return {**save_features(folder, x_train, labels[train], x_test, data.test_labels[test]),
            "vectorize_seconds": round(seconds, 1)}


def save_features(folder: Path, x_train: sp.csr_matrix, y_train: np.ndarray, x_test: sp.csr_matrix,
                  y_test: np.ndarray) -> dict[str, Any]:
    """Save vectorized splits where :func:`run_child` reads them (labels as float32 class indices); return their
    sizes."""
    sp.save_npz(folder / "x_train.npz", x_train, compressed=False)
    sp.save_npz(folder / "x_test.npz", x_test, compressed=False)
    np.save(folder / "y_train.npy", y_train.astype(np.float32))
    np.save(folder / "y_test.npy", y_test.astype(np.float32))
    return {"train_samples": int(x_train.shape[0]), "test_samples": int(x_test.shape[0]),
            "features": int(x_train.shape[1]), "stored_values": int(x_train.nnz),
            "classes": max(2, int(y_train.max()) + 1)}


def build_input(pipeline: Pipeline, x: sp.csr_matrix, y: np.ndarray, batch_size: int, seed: int):
    """Return ``(data, fit_kwargs, make_batches)`` for ``pipeline``.

    ``data`` and ``fit_kwargs`` go to ``model.fit`` (``shuffle=False`` where the
    pipeline shuffles itself: for a generator Keras would ignore ``shuffle``
    with a warning, and for a ``PyDataset`` it would shuffle the order of the
    batch indices again, ``PyDatasetAdapter``); ``make_batches`` returns a fresh iterator over one epoch of
    batches (``None`` where Keras builds the batches itself), used to time the
    input pipeline on its own.
    """
    steps = batching.steps_per_epoch(len(y), batch_size)
    name = pipeline.name
    if name == "dense_in_memory":
        return x.toarray(), {"y": y, "batch_size": batch_size, "shuffle": True}, None
    if name == "sparse_in_memory":
        return x, {"y": y, "batch_size": batch_size, "shuffle": True}, None
    if name.startswith("generator_"):
        sparse_batches = name == "generator_sparse"

        def generator():
            return batching.batch_generator(x, y, batch_size, seed=seed, sparse=sparse_batches)
        return generator(), {"steps_per_epoch": steps, "shuffle": False}, lambda: itertools.islice(generator(), steps)
    if name.startswith("pydataset_"):
        workers = 2 if name.endswith("2_threads") else 1
        dataset = pydataset.CsrBatches(x, y, batch_size, sparse=name == "pydataset_sparse", seed=seed,
                                       workers=workers)
        return dataset, {}, lambda: (dataset[i] for i in range(len(dataset)))
    if name == "tfdata_from_generator":
        dataset = tfdata.from_generator_dataset(x, y, batch_size, seed=seed)
        return dataset, {"steps_per_epoch": steps, "shuffle": False}, lambda: iter(dataset.take(steps))
    if name == "tfdata_sparse_slices":
        dataset = tfdata.sparse_slices_dataset(x, y, batch_size, seed=seed)
        return dataset, {"shuffle": False}, lambda: iter(dataset)
    if name.startswith("tfdata_gather"):
        dataset = tfdata.gathered_dataset(x, y, batch_size, seed=seed)
        return dataset, {"shuffle": False}, lambda: iter(dataset)
    if pipeline.floor:
        batch = x[:batch_size]
        x_batch = sparse.to_tf_sparse(batch) if pipeline.sparse_model else tf.constant(batch.toarray())
        repeated = tfdata.constant_batch_dataset(x_batch, y[:batch_size])
        return repeated, {"steps_per_epoch": steps, "shuffle": False}, None
    raise ValueError(f"unknown pipeline {name!r}; known: {', '.join(BY_NAME)}")


def run_child(name: str, folder: Path, epochs: int, batch_size: int, seed: int) -> dict[str, Any]:
    """Train with one pipeline in this process and return its measurements (run it with ``run_fresh``)."""
    pipeline = BY_NAME[name]
    x = sp.load_npz(folder / "x_train.npz").tocsr()
    y = np.load(folder / "y_train.npy")
    set_seed(seed)
    classes = max(2, int(y.max()) + 1)  # two: the sigmoid unit, float labels; more: softmax, class indices
    model = build_mlp(x.shape[1], classes, sparse_input=pipeline.sparse_model,
                      steps_per_execution=pipeline.steps_per_execution)
    clock = StepTimer()
    with MemoryMonitor(interval=0.02) as monitor:
        data, fit_kwargs, make_batches = build_input(pipeline, x, y, batch_size, seed)
        history = model.fit(data, epochs=epochs, verbose=0, callbacks=[clock], **fit_kwargs)
    ms = clock.ms_per_step()
    result: dict[str, Any] = {
        "pipeline": name, "description": pipeline.description, "chapter": pipeline.chapter,
        "model_input": "sparse" if pipeline.sparse_model else "dense",
        "holds_dense_matrix": pipeline.holds_dense_matrix, "floor": pipeline.floor,
        "steps_per_execution": pipeline.steps_per_execution,
        "ms_per_step": round(ms, 2),
        "samples_per_s": round(len(y) / (ms / 1000 * batching.steps_per_epoch(len(y), batch_size)), 1),
        "ms_per_step_each_epoch": [round(v, 2) for v in clock.ms_per_step_each_epoch()],
        "epoch_seconds": [round(s, 2) for s in clock.train_seconds],
        "peak_rss_mb": round(monitor.peak / MB, 1), "start_rss_mb": round(monitor.timeline.start / MB, 1),
        "train_accuracy": round(float(history.history["accuracy"][-1]), 4),
    }
    if make_batches is not None:  # the input pipeline alone, one epoch, no training
        start = time.perf_counter()
        count = sum(1 for _ in make_batches())
        result["input_only_ms_per_batch"] = round(1000 * (time.perf_counter() - start) / count, 2)
    if not pipeline.floor:
        x_test = sp.load_npz(folder / "x_test.npz").tocsr()
        y_test = np.load(folder / "y_test.npy")
        scores = model.evaluate(x_test, y_test, batch_size=1024, verbose=0, return_dict=True)
        result["test_accuracy"] = round(float(scores["accuracy"]), 4)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 training and test reviews, 2 epochs")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--epochs", type=int, help="epochs per pipeline, the first being warm-up (default 4; 2 quick)")
    parser.add_argument("--train-size", type=int, help="train on a seeded subset of this many reviews "
                        "(default all 25,000; 2,000 with --quick)")
    parser.add_argument("--test-size", type=int, help="score on a seeded subset of this many test reviews "
                        "(default all 25,000; 2,000 with --quick)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--pipelines", help="comma-separated subset of: " + ", ".join(BY_NAME))
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 4)
    if min(v for v in (epochs, args.batch_size, args.train_size, args.test_size) if v is not None) < 1:
        parser.error("--epochs, --batch-size, --train-size and --test-size must be >= 1")
    names = args.pipelines.split(",") if args.pipelines else list(BY_NAME)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown pipeline(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as tmp:
        quick_size = 2000 if args.quick else None
        data = prepare_data(Path(tmp), args.train_size or quick_size, args.test_size or quick_size, args.seed)
        print(f"{machine_summary()}; {data['train_samples']} training reviews, {data['features']} features, "
              f"{epochs} epochs (first is warm-up), batch {args.batch_size}", flush=True)
        results = []
        for name in names:
            result = run_fresh(run_child, name, Path(tmp), epochs, args.batch_size, args.seed,
                               timeout=300 if args.quick else 1800)
            result.update(data=data, epochs=epochs, batch_size=args.batch_size, machine=machine_summary(),
                          versions=package_versions())
            results.append(result)
            print(f"  {name}: {result['ms_per_step']} ms/step, {result['peak_rss_mb']:.0f} MB", flush=True)
    total = time.perf_counter() - start
    for result in results:
        result["total_seconds"] = round(total, 1)
    print(format_table(results))
    print(f"whole benchmark: {total / 60:.1f} minutes")
    if args.json:
        write_json(args.json, results)
    return 0


# --------------------------------------------------------------------------------------------- reading the results


def load_results(path: str | Path) -> list[Result]:
    """Return the list of per-pipeline results written by ``bench/pipelines.py --json``."""
    return json.loads(Path(path).read_text())


def by_name(results: list[Result]) -> dict[str, Result]:
    """Return the results keyed by pipeline name."""
    return {r["pipeline"]: r for r in results}


def floor_for(result: Result, results: list[Result]) -> Result | None:
    """Return the compute-floor result with the same model input and steps per execution, if measured."""
    for r in results:
        if r["floor"] and r["model_input"] == result["model_input"] \
                and r["steps_per_execution"] == result["steps_per_execution"]:
            return r
    return None


def best_without_dense_matrix(results: list[Result]) -> Result:
    """Return the pipeline with the most samples/s among those that never hold the full dense matrix."""
    candidates = [r for r in results if not r["floor"] and not r["holds_dense_matrix"]]
    if not candidates:
        raise ValueError("no pipeline without the dense matrix in these results")
    return max(candidates, key=lambda r: r["samples_per_s"])


def format_table(results: list[Result], reference: str = "dense_in_memory") -> str:
    """Return the results as a fixed-width text table, speed and memory as ratios to ``reference``.

    Columns: ms per step, samples/s, speed ratio, input-only ms per batch
    (the pipeline iterated without training; ``-`` where Keras builds the
    batches itself), peak RSS during training, memory ratio, test accuracy.
    """
    ref = by_name(results).get(reference)
    header = (f"{'pipeline':<27} {'ms/step':>8} {'samples/s':>10} {'speed':>6} {'input ms':>8} "
              f"{'peak RSS MB':>11} {'memory':>6} {'test acc':>8}")
    lines = [header, "-" * len(header)]
    for r in results:
        speed = f"{r['samples_per_s'] / ref['samples_per_s']:.2f}x" if ref else ""
        memory = f"{r['peak_rss_mb'] / ref['peak_rss_mb']:.2f}x" if ref else ""
        input_ms = r.get("input_only_ms_per_batch")
        accuracy = r.get("test_accuracy")
        lines.append(
            f"{r['pipeline']:<27} {r['ms_per_step']:>8.2f} {r['samples_per_s']:>10.0f} {speed:>6} "
            f"{'-' if input_ms is None else f'{input_ms:.2f}':>8} {r['peak_rss_mb']:>11.0f} {memory:>6} "
            f"{'-' if accuracy is None else f'{accuracy:.4f}':>8}"
        )
    return "\n".join(lines)


def plot_pipelines(results: list[Result], title: str = "") -> Figure:
    """Plot samples/s and peak RSS of every pipeline side by side, compute floors hatched.

    Pipelines that hold the full dense matrix are drawn in red, the others in blue.
    """
    fig, (speed_ax, memory_ax) = plt.subplots(1, 2, figsize=(12, 0.35 * len(results) + 1.5), sharey=True)
    names = [r["pipeline"] for r in results]
    colors = ["C3" if r["holds_dense_matrix"] else "C0" for r in results]
    hatches = ["//" if r["floor"] else "" for r in results]
    for ax, key, label in ((speed_ax, "samples_per_s", "training samples / s (after warm-up)"),
                           (memory_ax, "peak_rss_mb", "peak RSS during training (MB)")):
        bars = ax.barh(names, [r[key] for r in results], color=colors, alpha=0.85)
        for bar, hatch in zip(bars, hatches, strict=True):
            bar.set_hatch(hatch)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    speed_ax.invert_yaxis()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    sys.exit(main())
