"""Benchmark every input pipeline of chapters 01–04 on the same data, model, seed and epochs.

Each pipeline trains the guide's MLP in its own fresh Python process, so that
each peak RSS belongs to that pipeline alone; the parent vectorizes the data
once and hands it to the children as ``.npz`` files. A pipeline's time per
step is its fastest epoch after the first (warm-up) epoch divided by the
number of steps (the fastest, because background load only ever slows an
epoch down); samples/s is training samples over that same epoch time.
"Compute floor" rows train on one pre-built batch repeated: the cost of the
train step itself, with no input work at all.

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
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make ``utils`` importable without installing
    sys.path.insert(0, str(REPO))

from utils.benchmark import format_table  # noqa: E402
from utils.memory import GB, MB  # noqa: E402

RESULT_PREFIX = "BENCH-RESULT "


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
    Pipeline("dense_in_memory", "model.fit(dense array)", "01", False, holds_dense_matrix=True),
    Pipeline("sparse_in_memory", "model.fit(scipy CSR), densified per batch by Keras", "02", False),
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
    from utils import datasets
    from utils.vectorize import NgramVectorizer

    data = datasets.load("imdb")
    texts = data.train_texts + data.val_texts
    labels = np.concatenate([data.train_labels, data.val_labels])
    rng = np.random.default_rng(seed)
    train = rng.permutation(len(texts))[:num_train] if num_train else np.arange(len(texts))
    test = rng.permutation(len(data.test_texts))[:num_test] if num_test else np.arange(len(data.test_texts))
    start = time.perf_counter()
    vectorizer = NgramVectorizer()
    x_train = vectorizer.fit_transform([texts[i] for i in train], labels[train])
    x_test = vectorizer.transform([data.test_texts[i] for i in test])
    seconds = time.perf_counter() - start
    sp.save_npz(folder / "x_train.npz", x_train, compressed=False)
    sp.save_npz(folder / "x_test.npz", x_test, compressed=False)
    np.save(folder / "y_train.npy", labels[train].astype(np.float32))
    np.save(folder / "y_test.npy", data.test_labels[test].astype(np.float32))
    return {"train_samples": int(x_train.shape[0]), "test_samples": int(x_test.shape[0]),
            "features": int(x_train.shape[1]), "stored_values": int(x_train.nnz),
            "vectorize_seconds": round(seconds, 1)}


def build_input(pipeline: Pipeline, x: sp.csr_matrix, y: np.ndarray, batch_size: int, seed: int):
    """Return ``(data, fit_kwargs, make_batches)`` for ``pipeline``.

    ``data`` and ``fit_kwargs`` go to ``model.fit``; ``make_batches`` returns a
    fresh iterator over one epoch of batches (``None`` where Keras builds the
    batches itself), used to time the input pipeline on its own.
    """
    import tensorflow as tf

    from utils import batching, pipelines, pydataset

    steps = batching.steps_per_epoch(len(y), batch_size)
    name = pipeline.name
    if name == "dense_in_memory":
        return x.toarray(), {"y": y, "batch_size": batch_size, "shuffle": True}, None
    if name == "sparse_in_memory":
        return x, {"y": y, "batch_size": batch_size, "shuffle": True}, None
    if name.startswith("generator_"):
        sparse = name == "generator_sparse"

        def generator():
            return batching.batch_generator(x, y, batch_size, seed=seed, sparse=sparse)
        return generator(), {"steps_per_epoch": steps}, lambda: itertools.islice(generator(), steps)
    if name.startswith("pydataset_"):
        workers = 2 if name.endswith("2_threads") else 1
        dataset = pydataset.CsrBatches(x, y, batch_size, sparse=name == "pydataset_sparse", seed=seed,
                                       workers=workers)
        return dataset, {}, lambda: (dataset[i] for i in range(len(dataset)))
    if name == "tfdata_from_generator":
        dataset = pipelines.from_generator_dataset(x, y, batch_size, seed=seed)
        return dataset, {"steps_per_epoch": steps}, lambda: iter(dataset.take(steps))
    if name == "tfdata_sparse_slices":
        dataset = pipelines.sparse_slices_dataset(x, y, batch_size, seed=seed)
        return dataset, {}, lambda: iter(dataset)
    if name.startswith("tfdata_gather"):
        dataset = pipelines.gathered_dataset(x, y, batch_size, seed=seed)
        return dataset, {}, lambda: iter(dataset)
    if pipeline.floor:
        batch = x[:batch_size]
        x_batch = pydataset.csr_to_tf_sparse(batch) if pipeline.sparse_model else tf.constant(batch.toarray())
        return pipelines.constant_batch_dataset(x_batch, y[:batch_size]), {"steps_per_epoch": steps}, None
    raise ValueError(f"unknown pipeline {name!r}; known: {', '.join(BY_NAME)}")


def run_child(name: str, folder: Path, epochs: int, batch_size: int, seed: int) -> dict[str, Any]:
    """Train with one pipeline in this process and return its measurements."""
    from utils.runtime import quiet_tensorflow, set_seed

    quiet_tensorflow()
    import keras

    from utils.memory import MemoryMonitor
    from utils.models import build_mlp
    from utils.training import StepTimer

    pipeline = BY_NAME[name]
    x = sp.load_npz(folder / "x_train.npz").tocsr()
    y = np.load(folder / "y_train.npy")
    set_seed(seed)
    model = build_mlp(x.shape[1], 2, sparse_input=pipeline.sparse_model)
    if pipeline.steps_per_execution > 1:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="binary_crossentropy",
                      metrics=["accuracy"], steps_per_execution=pipeline.steps_per_execution)

    clock = StepTimer()
    with MemoryMonitor(interval=0.02) as monitor:
        data, fit_kwargs, make_batches = build_input(pipeline, x, y, batch_size, seed)
        history = model.fit(data, epochs=epochs, verbose=0, callbacks=[clock], **fit_kwargs)
    epoch_seconds = clock.epoch_seconds
    steps = int(np.ceil(len(y) / batch_size))
    epoch = min(epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds)  # fastest: least disturbed
    result: dict[str, Any] = {
        "pipeline": name, "description": pipeline.description, "chapter": pipeline.chapter,
        "model_input": "sparse" if pipeline.sparse_model else "dense",
        "holds_dense_matrix": pipeline.holds_dense_matrix, "floor": pipeline.floor,
        "steps_per_execution": pipeline.steps_per_execution,
        "ms_per_step": round(1000 * epoch / steps, 2), "samples_per_s": round(len(y) / epoch, 1),
        "epoch_seconds": [round(s, 2) for s in epoch_seconds],
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


def run_script(script: Path, args: list[str], prefix: str, label: str, timeout: float) -> dict[str, Any]:
    """Run ``python script *args`` in a fresh process and return the JSON it prints after ``prefix``.

    Raises:
        RuntimeError: the child failed or printed no result; the message names ``label`` and holds the
            child's last output lines.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(prefix):
            return json.loads(line[len(prefix):])
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
    raise RuntimeError(f"{label} failed (exit code {done.returncode}):\n{tail}")


def run_in_subprocess(name: str, folder: Path, epochs: int, batch_size: int, seed: int,
                      timeout: float) -> dict[str, Any]:
    """Run one pipeline in a fresh Python process and return its result (see :func:`run_script`)."""
    args = ["--child", name, "--data", str(folder), "--epochs", str(epochs), "--batch-size", str(batch_size),
            "--seed", str(seed)]
    return run_script(Path(__file__).resolve(), args, RESULT_PREFIX, f"pipeline {name}", timeout)


def machine() -> str:
    """Return a one-line description of this machine."""
    return (f"{platform.system()} {platform.machine()}, {psutil.cpu_count(logical=True)} logical cores, "
            f"{psutil.virtual_memory().total / GB:.1f} GB RAM")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, one pipeline); return the exit code."""
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
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 4)
    if min(v for v in (epochs, args.batch_size, args.train_size, args.test_size) if v is not None) < 1:
        parser.error("--epochs, --batch-size, --train-size and --test-size must be >= 1")
    if args.child:
        result = run_child(args.child, args.data, epochs, args.batch_size, args.seed)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    names = args.pipelines.split(",") if args.pipelines else list(BY_NAME)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown pipeline(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as tmp:
        quick_size = 2000 if args.quick else None
        data = prepare_data(Path(tmp), args.train_size or quick_size, args.test_size or quick_size, args.seed)
        print(f"{machine()}; {data['train_samples']} training reviews, {data['features']} features, "
              f"{epochs} epochs (first is warm-up), batch {args.batch_size}", flush=True)
        results = []
        for name in names:
            result = run_in_subprocess(name, Path(tmp), epochs, args.batch_size, args.seed,
                                       timeout=300 if args.quick else 1800)
            result.update(data=data, epochs=epochs, batch_size=args.batch_size, machine=machine())
            results.append(result)
            print(f"  {name}: {result['ms_per_step']} ms/step, {result['peak_rss_mb']:.0f} MB", flush=True)
    total = time.perf_counter() - start
    for result in results:
        result["total_seconds"] = round(total, 1)
    print(format_table(results))
    print(f"whole benchmark: {total / 60:.1f} minutes")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        partial = args.json.with_name(args.json.name + ".partial")
        partial.write_text(json.dumps(results, indent=1) + "\n")
        os.replace(partial, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
