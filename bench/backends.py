"""The series' batch-training routes on Keras 3's backends: TensorFlow, JAX and PyTorch (chapter 12).

Every route trains the guide's MLP on the same tf-idf features (vectorized once
by the parent, as in ``bench/pipelines.py``) in a fresh Python process whose
``KERAS_BACKEND`` is set before Keras is imported (the backend is fixed at
import). Each run records the series' ms per step
(:func:`utils.callbacks.ms_per_step`: median over the epochs after the first),
the peak RSS of its process (backend import included) and its RSS over time
with epoch marks, the training curves, the test accuracy, and, when it fails,
the exception's last line as Keras or the backend wrote it.

Routes (:data:`ROUTES`):

* ``generator`` — chapter 02's ``batch_generator``;
* ``pydataset_threads`` / ``pydataset_processes`` — chapter 03's ``CsrBatches``
  with two worker threads, or two worker processes (dense batches: the
  backends' sparse tensors are not built in forked workers);
* ``tfdata`` — chapter 04's ``gathered_dataset`` (TensorFlow is imported, also on JAX and PyTorch);
* ``grain`` — :func:`utils.graindata.grain_batches`, gathering on two threads.

Batches are sparse where the backend takes sparse input (TensorFlow: scipy CSR
or ``tf.SparseTensor``; JAX: ``BCOO`` padded to a few shapes,
:func:`utils.sparse.to_jax_sparse`) and dense float32 on PyTorch, whose
``keras.Input(sparse=True)`` raises (a ``sparse_probe`` run records it). All
routes compile with ``steps_per_execution=16`` except on PyTorch, whose
backend accepts only 1 (a ``steps_probe`` run records that too).

Usage::

    python bench/backends.py --quick                       # 2,000 reviews, 2 epochs: a check, ~5 min
    python bench/backends.py --json results/12_backends.json   # all 25,000 / 25,000
    python bench/backends.py --backends jax --routes grain,generator
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from utils.processes import ChildProcessError, run_fresh, write_json
from utils.runtime import machine_summary, package_versions, quiet_tensorflow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BACKENDS = ("tensorflow", "jax", "torch")
ROUTES = {
    "generator": "batch_generator (chapter 02)",
    "pydataset_threads": "CsrBatches, 2 worker threads (chapter 03)",
    "pydataset_processes": "CsrBatches, 2 worker processes, dense batches (chapter 03)",
    "tfdata": "tf.data gathering CSR rows in the graph (chapter 04)",
    "grain": "Grain: row numbers shuffled, batched, gathered on 2 threads",
}
#: The backends' Python packages, for the ones that are optional.
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
#: How to add the optional PyTorch backend (CPU wheel; PyPI's default wheel brings CUDA libraries).
TORCH_INSTALL = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
STEPS_PER_EXECUTION = 16
#: Backends on which ``model.compile`` accepts ``steps_per_execution`` > 1.
MULTI_STEP_BACKENDS = ("tensorflow", "jax")
WORKERS = 2


def batch_kind(backend: str, route: str) -> str:
    """``"sparse"`` where ``backend`` takes sparse input and ``route`` can carry it, else ``"dense"``."""
    from utils.sparse import SPARSE_BACKENDS

    return "sparse" if backend in SPARSE_BACKENDS and route != "pydataset_processes" else "dense"


def build_route(route: str, x, y, batch_size: int, sparse: bool, seed: int, *, shuffle: bool = True):
    """Return ``(data, fit_kwargs)`` for ``model.fit`` (or ``evaluate``) with ``route``, on the running backend."""
    import keras

    from utils import batching

    steps = batching.steps_per_epoch(len(y), batch_size)
    backend = keras.backend.backend()
    if route == "generator":
        batches = batching.batch_generator(x, y, batch_size, shuffle=shuffle, seed=seed, sparse=sparse)
        if sparse and backend == "jax":  # Keras would make a BCOO of a new shape from every scipy batch
            from utils.sparse import to_jax_sparse

            batches = ((to_jax_sparse(x_batch), y_batch) for x_batch, y_batch in batches)
        return batches, {"steps_per_epoch": steps}
    if route.startswith("pydataset_"):
        from utils.pydataset import CsrBatches

        processes = route == "pydataset_processes"
        dataset = CsrBatches(x, y, batch_size, sparse=sparse, shuffle=shuffle, seed=seed, workers=WORKERS,
                             use_multiprocessing=processes)
        return dataset, {}
    if route == "tfdata":
        from utils import tfdata

        dataset = tfdata.gathered_dataset(x, y, batch_size, shuffle=shuffle, seed=seed, densify=not sparse)
        if sparse and backend == "jax":
            dataset = tfdata.pad_for_jax(dataset)
        return dataset, {}
    if route == "grain":
        from utils.graindata import grain_batches

        return grain_batches(x, y, batch_size, shuffle=shuffle, seed=seed, sparse=sparse,
                             num_threads=WORKERS), {"steps_per_epoch": steps}
    raise ValueError(f"unknown route {route!r}; known: {', '.join(ROUTES)}")


def last_line(error: BaseException | str) -> str:
    """The exception's own message: the last non-empty line of its traceback, Keras' formatting removed."""
    text = error if isinstance(error, str) else "".join(traceback.format_exception(error))
    lines = [line.strip() for line in text.replace("\x1b[1m", "").replace("\x1b[0m", "").splitlines()
             if line.strip()]
    return lines[-1] if lines else ""


def run_route(backend: str, route: str, folder: Path, epochs: int, batch_size: int, seed: int,
              sparse: bool | None = None, steps_per_execution: int | None = None) -> dict[str, Any]:
    """Train with ``route`` on ``backend`` in this process; return the measurements (run it with ``run_fresh``).

    Must run in a process that has not imported Keras: the backend is chosen
    here. ``sparse=None`` picks :func:`batch_kind`; ``steps_per_execution=None``
    picks :data:`STEPS_PER_EXECUTION` where the backend takes it, else 1. A
    failure is returned as a record with ``status="failed"`` and the
    exception's message, not raised.
    """
    os.environ["KERAS_BACKEND"] = backend
    quiet_tensorflow()
    from utils.memory import MB, MemoryMonitor

    sparse = batch_kind(backend, route) == "sparse" if sparse is None else sparse
    if steps_per_execution is None:
        steps_per_execution = STEPS_PER_EXECUTION if backend in MULTI_STEP_BACKENDS else 1
    record: dict[str, Any] = {"backend": backend, "route": route, "description": ROUTES.get(route, route),
                              "batches": "sparse" if sparse else "dense", "steps_per_execution": steps_per_execution,
                              "ms_per_step": None, "ms_per_step_each_epoch": None, "peak_rss_mb": None,
                              "test_accuracy": None, "status": "ok", "error": None}
    start = time.perf_counter()
    with MemoryMonitor(interval=0.02) as monitor:
        try:
            import numpy as np
            import scipy.sparse as sp

            from utils.callbacks import StepTimer
            from utils.models import build_mlp
            from utils.runtime import set_seed

            x = sp.load_npz(folder / "x_train.npz").tocsr()
            y = np.load(folder / "y_train.npy")
            set_seed(seed)
            model = build_mlp(x.shape[1], 2, sparse_input=sparse, steps_per_execution=steps_per_execution)
            data, fit_kwargs = build_route(route, x, y, batch_size, sparse, seed)
            clock = StepTimer()
            history = model.fit(data, epochs=epochs, shuffle=False, verbose=0,
                                callbacks=[clock, monitor.keras_callback()], **fit_kwargs)
            monitor.mark("fit returned")
            record["history"] = {key: [round(float(v), 4) for v in values] for key, values in history.history.items()}
            record["ms_per_step"] = round(clock.ms_per_step(), 2)
            record["ms_per_step_each_epoch"] = [round(v, 2) for v in clock.ms_per_step_each_epoch()]
            x_test = sp.load_npz(folder / "x_test.npz").tocsr()
            y_test = np.load(folder / "y_test.npy")
            test_data, test_kwargs = build_route("generator" if route == "pydataset_processes" else route,
                                                 x_test, y_test, 1024, sparse, seed, shuffle=False)
            test_steps = -(-len(y_test) // 1024)
            scores = model.evaluate(test_data, steps=test_steps if "steps_per_epoch" in test_kwargs else None,
                                    verbose=0, return_dict=True)
            record["test_accuracy"] = round(float(scores["accuracy"]), 4)
        except Exception as error:  # noqa: BLE001 - the failure is the measurement
            record.update(status="failed", error=last_line(error))
    record["peak_rss_mb"] = round(monitor.peak / MB, 1)
    timeline = monitor.timeline.thinned(300)
    record["memory"] = {"seconds": [round(t, 2) for t in timeline.times],
                        "rss_mb": [round(r / MB, 1) for r in timeline.rss],
                        "marks": [(round(t, 2), label) for t, label in timeline.marks]}
    record["tensorflow_imported"] = "tensorflow" in sys.modules  # keras.utils.set_random_seed imports it if installed
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def jax_shape_demo(folder: Path, steps: int, batch_size: int, seed: int) -> dict[str, Any]:
    """On JAX: ms per step of batches converted as Keras converts scipy batches, against batches padded to few shapes.

    Runs ``steps`` train steps of each kind on the same shuffled batches (after
    one step of warm-up each) and counts the distinct numbers of stored values,
    i.e. the shapes JAX compiles the train step for. Keras' own conversion is
    ``BCOO.from_scipy_sparse`` (``data_adapter_utils.scipy_sparse_to_jax_sparse``),
    which stores exactly the batch's non-zeros. Run it with ``run_fresh``.
    """
    os.environ["KERAS_BACKEND"] = "jax"
    quiet_tensorflow()
    import numpy as np
    import scipy.sparse as sp
    from jax.experimental.sparse import BCOO

    from utils import batching
    from utils.models import build_mlp
    from utils.runtime import set_seed
    from utils.sparse import to_jax_sparse

    x = sp.load_npz(folder / "x_train.npz").tocsr()
    y = np.load(folder / "y_train.npy")
    result: dict[str, Any] = {}
    for name, convert in (("as Keras converts scipy", BCOO.from_scipy_sparse), ("padded", to_jax_sparse)):
        set_seed(seed)
        model = build_mlp(x.shape[1], 2, sparse_input=True)
        batches = batching.batch_generator(x, y, batch_size, seed=seed, sparse=True)
        converted = [(convert(x_batch), y_batch) for x_batch, y_batch in (next(batches) for _ in range(steps + 1))]
        model.train_on_batch(*converted[0])
        start = time.perf_counter()
        for x_batch, y_batch in converted[1:]:
            model.train_on_batch(x_batch, y_batch)
        result[name] = {"ms_per_step": round(1000 * (time.perf_counter() - start) / steps, 1),
                        "distinct_shapes": len({x_batch.nse for x_batch, _ in converted}), "steps": steps}
    return result


def available(backend: str) -> bool:
    """Whether ``backend``'s package is installed here."""
    return importlib.util.find_spec(BACKEND_PACKAGES[backend]) is not None


def run_all(folder: Path, backends: list[str], routes: list[str], epochs: int, batch_size: int, seed: int,
            timeout: float) -> list[dict[str, Any]]:
    """Run every route on every backend, each in a fresh process.

    Two probes follow on a backend that takes no sparse input or only one step per execution (PyTorch):
    the generator route with sparse batches (``sparse_probe``) and with ``steps_per_execution=16``
    (``steps_probe``), to record the messages they fail with.
    """
    from utils.sparse import SPARSE_BACKENDS

    runs = [(backend, route, None, None, route) for backend in backends for route in routes]
    runs += [(backend, "generator", True, None, "sparse_probe") for backend in backends
             if backend not in SPARSE_BACKENDS]
    runs += [(backend, "generator", None, STEPS_PER_EXECUTION, "steps_probe") for backend in backends
             if backend not in MULTI_STEP_BACKENDS]
    records = []
    for backend, route, sparse, steps, name in runs:
        if not available(backend):
            record = {"backend": backend, "route": route, "status": "skipped", "error":
                      f"{BACKEND_PACKAGES[backend]} is not installed (optional: {TORCH_INSTALL})"
                      if backend == "torch" else f"{BACKEND_PACKAGES[backend]} is not installed"}
        else:
            try:
                record = run_fresh(run_route, backend, route, folder, epochs, batch_size, seed, sparse, steps,
                                   timeout=timeout, daemon=route != "pydataset_processes")
            except ChildProcessError as error:  # killed, hung or out of time: the process itself failed
                record = {"backend": backend, "route": route, "status": "failed", "error": last_line(str(error))}
        record["route"] = name
        records.append(record)
        figures = (f"{record['ms_per_step']} ms/step, {record['peak_rss_mb']:.0f} MB, test {record['test_accuracy']}"
                   if record["status"] == "ok" else f"{record['status']}: {record['error']}")
        print(f"  {backend:>10} {record['route']:<20} {figures}", flush=True)
    return records


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 training and test reviews, 2 epochs")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--epochs", type=int, help="epochs per run, the first being warm-up (default 4; 2 quick)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--backends", help="comma-separated subset of: " + ", ".join(BACKENDS))
    parser.add_argument("--routes", help="comma-separated subset of: " + ", ".join(ROUTES))
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 4)
    if min(epochs, args.batch_size) < 1:
        parser.error("--epochs and --batch-size must be >= 1")
    backends = args.backends.split(",") if args.backends else list(BACKENDS)
    routes = args.routes.split(",") if args.routes else list(ROUTES)
    unknown = [b for b in backends if b not in BACKENDS] + [r for r in routes if r not in ROUTES]
    if unknown:
        parser.error(f"unknown backend(s) or route(s) {', '.join(unknown)}; known: "
                     f"{', '.join(BACKENDS)}; {', '.join(ROUTES)}")
    from bench.pipelines import prepare_data  # the parent only: it imports TensorFlow

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        size = 2000 if args.quick else None
        data = prepare_data(Path(tmp), size, size, args.seed)
        print(f"{machine_summary()}; {data['train_samples']} training reviews, {data['features']} features, "
              f"{epochs} epochs (first is warm-up), batch {args.batch_size}", flush=True)
        records = run_all(Path(tmp), backends, routes, epochs, args.batch_size, args.seed,
                          timeout=600)
        demo = (run_fresh(jax_shape_demo, Path(tmp), 10 if args.quick else 30, args.batch_size, args.seed,
                          timeout=600) if "jax" in backends and available("jax") else None)
    total = time.perf_counter() - start
    print(f"whole benchmark: {total / 60:.1f} minutes")
    if args.json:
        write_json(args.json, {"records": records, "jax_shapes": demo, "data": data, "epochs": epochs,
                               "batch_size": args.batch_size, "machine": machine_summary(),
                               "versions": package_versions(optional=("jax", "grain", "torch")),
                               "total_seconds": round(total, 1)})
    return 0


# --------------------------------------------------------------------------------------------- reading the results


def load_results(path: str | Path) -> dict[str, Any]:
    """Return what ``bench/backends.py --json`` wrote: ``records``, ``jax_shapes``, ``data``, ``machine``, ..."""
    return json.loads(Path(path).read_text())


def record_for(records: list[dict[str, Any]], backend: str, route: str) -> dict[str, Any] | None:
    """The record of ``route`` on ``backend``, or ``None``."""
    return next((r for r in records if r["backend"] == backend and r["route"] == route), None)


def epoch_spread(record: dict[str, Any]) -> tuple[float, float]:
    """Lowest and highest ms per step of the epochs after the first (warm-up), or of the only epoch."""
    epochs = record["ms_per_step_each_epoch"]
    timed = epochs[1:] or epochs
    return min(timed), max(timed)


def training_peak_mb(record: dict[str, Any]) -> float:
    """Highest RSS sampled until ``fit`` returned, in MB, read from the record's timeline.

    The record's ``peak_rss_mb`` covers the whole process, scoring the test set
    after training included. The timeline is thinned to 300 samples, so this is
    a lower bound of the training peak, close to it.
    """
    memory = record["memory"]
    returned = next(seconds for seconds, label in memory["marks"] if label == "fit returned")
    return max(mb for seconds, mb in zip(memory["seconds"], memory["rss_mb"], strict=True) if seconds <= returned)


def best_route(records: list[dict[str, Any]], backend: str) -> dict[str, Any] | None:
    """The completed route with the fewest ms per step on ``backend`` (``None`` if none completed)."""
    done = [r for r in records if r["backend"] == backend and r["status"] == "ok" and r["route"] in ROUTES]
    return min(done, key=lambda r: r["ms_per_step"], default=None)


def format_table(records: list[dict[str, Any]]) -> str:
    """Return one line per route and backend: batches, ms per step (epoch spread), peak RSS, test accuracy or error.

    Two peaks: until ``fit`` returned (:func:`training_peak_mb`), and of the whole process, test scoring included.
    """
    header = (f"{'backend':<11}{'route':<21}{'batches':<8}{'ms/step':>8}{'spread':>16}{'train MB':>9}{'peak MB':>9}"
              f"{'test acc':>9}")
    lines = [header, "-" * len(header)]
    for r in records:
        if r["status"] != "ok":
            lines.append(f"{r['backend']:<11}{r['route']:<21}{r.get('batches', '-'):<8}  {r['status']}: {r['error']}")
            continue
        low, high = epoch_spread(r)
        lines.append(f"{r['backend']:<11}{r['route']:<21}{r['batches']:<8}{r['ms_per_step']:>8.2f}"
                     f"{f'{low:.2f}-{high:.2f}':>16}{training_peak_mb(r):>9.0f}{r['peak_rss_mb']:>9.0f}"
                     f"{r['test_accuracy']:>9.4f}")
    return "\n".join(lines)


def plot_backends(records: list[dict[str, Any]], title: str = "") -> Figure:
    """Plot ms per step (bars, epochs' spread, log scale) and the training peak RSS of every route, per backend.

    A route that failed or was skipped on a backend leaves its bar out and is marked ``x`` (failed) or ``-``.
    (Matplotlib is imported here: the training processes that import this module must not load it.)
    """
    import matplotlib.pyplot as plt

    routes = [route for route in ROUTES if any(r["route"] == route for r in records)]
    present = [b for b in BACKENDS if any(r["backend"] == b for r in records)]
    fig, (speed_ax, memory_ax) = plt.subplots(1, 2, figsize=(13, 4))
    width = 0.8 / max(len(present), 1)
    for i, backend in enumerate(present):
        positions = np.arange(len(routes)) + (i - (len(present) - 1) / 2) * width
        for ax, key in ((speed_ax, "ms_per_step"), (memory_ax, "training_peak")):
            for x, route in zip(positions, routes, strict=True):
                r = record_for(records, backend, route)
                if r is None or r["status"] != "ok":
                    ax.annotate("x" if r is not None and r["status"] == "failed" else "-", (x, 0),
                                ha="center", va="bottom", color=f"C{i}", fontsize=12)
                    continue
                error = None
                if key == "ms_per_step":
                    low, high = epoch_spread(r)
                    error = [[r[key] - low], [high - r[key]]]
                value = training_peak_mb(r) if key == "training_peak" else r[key]
                ax.bar(x, value, width, color=f"C{i}", yerr=error, capsize=3,
                       label=backend if route == next(q for q in routes if record_for(records, backend, q)) else None)
    speed_ax.set_yscale("log")
    for ax, label in ((speed_ax, "ms per step (whiskers: the epochs)"),
                      (memory_ax, "peak RSS until fit returned (MB)")):
        ax.set_xticks(np.arange(len(routes)), routes, rotation=20, ha="right")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    speed_ax.set_ylim(top=speed_ax.get_ylim()[1] * 4)  # room for the legend above the bars
    speed_ax.legend(title="backend", ncol=len(present), loc="upper center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    raise SystemExit(main())
