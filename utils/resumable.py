"""Training that survives being killed: Keras' BackupAndRestore, plus an input pipeline that resumes too.

``keras.callbacks.BackupAndRestore`` writes the model's weights, the
optimizer's state and the number of finished epochs to a folder at the end of
every epoch, and a later ``model.fit`` given the same callback starts from
there. It knows nothing about the data: a generator built the usual way
starts again with its first epoch's order after a restart, so the resumed run
trains on other batches than an uninterrupted run would have.

This module adds the missing half and the tools to test it for real:

* :func:`epoch_order` makes each epoch's shuffling a pure function of
  ``(seed, epoch)``, and :func:`resumable_batches` yields epochs from any
  ``start_epoch`` on;
* :func:`reseed_dropout` does the same for the dropout layers' random
  numbers, whose state ``BackupAndRestore`` does not save (its weights file
  holds the layers' weights and the optimizer's state, not the
  ``seed_generator_state`` variables);
* :func:`restored_epoch` reads, before ``fit`` starts, the epoch that
  ``BackupAndRestore`` is going to resume at: Keras draws the first batches
  from a generator before any callback runs, so the generator must know its
  starting epoch when it is built (:func:`start_epoch_check` verifies that
  Keras agreed);
* :func:`train` is a whole resumable training run, meant to run in its own
  process (``python -m utils.resumable``, see :func:`launch`). It keeps the
  best model with ``ModelCheckpoint`` and logs every epoch to a CSV file
  that survives the kill;
* :func:`pause_at` and :func:`kill_when_paused` kill such a process for real
  (``SIGKILL``: no ``finally``, no ``atexit``, nothing runs) at a chosen
  training step of a chosen epoch.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from utils.batching import Batch, batch_generator, check_batch_arguments, steps_per_epoch, take_rows

REPO_ROOT = Path(__file__).resolve().parent.parent

#: What ``BackupAndRestore`` writes into its folder (Keras 3): the weights and optimizer state, and
#: ``{"epoch": <epochs finished>, "batch": ...}``.
BACKUP_WEIGHTS = "latest.weights.h5"
BACKUP_METADATA = "training_metadata.json"

#: The files of a run folder (see :func:`train`).
BACKUP_DIR = "backup"
LOG_CSV = "log.csv"
BEST_MODEL = "best.keras"
FINAL_WEIGHTS = "final_weights.npz"
PAUSED_MARKER = "paused"


def epoch_order(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """Return the order in which epoch ``epoch`` (counted from 0) visits ``num_samples`` samples.

    The permutation depends on ``(seed, epoch)`` only, not on how many epochs
    a process has already drawn, so a restarted process can produce epoch
    ``epoch``'s order directly.
    """
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


def resumable_batches(x: sp.spmatrix | np.ndarray, y: np.ndarray, batch_size: int = 128, *, seed: int,
                      start_epoch: int = 0, sparse: bool = False,
                      dtype: np.dtype | type = np.float32) -> Generator[Batch, None, None]:
    """Return a generator that yields ``(x_batch, y_batch)`` forever, epoch ``start_epoch`` first.

    Like :func:`utils.batching.batch_generator`, except that each epoch's
    order is :func:`epoch_order` ``(len(y), seed, epoch)``: a generator built
    with ``start_epoch=k`` yields exactly what one built with
    ``start_epoch=0`` yields after its first ``k`` epochs.

    Args:
        x: samples, a scipy sparse matrix or a numpy array, one row per sample.
        y: labels, one per row of ``x``.
        batch_size: samples per batch, >= 1.
        seed: seed of the shuffling (required: without it nothing could resume).
        start_epoch: the epoch (counted from 0) whose batches come first.
        sparse: yield CSR batches with sorted indices instead of dense arrays.
        dtype: dtype of the ``x`` batches.

    Raises:
        ValueError: ``batch_size`` < 1, empty input, ``x`` and ``y`` of
            different lengths, or ``start_epoch`` < 0 (raised at once).
    """
    x, y = check_batch_arguments(x, y, batch_size)
    if start_epoch < 0:
        raise ValueError(f"start_epoch must be >= 0, got {start_epoch}")
    return _epochs(x, y, batch_size, seed, start_epoch, sparse, dtype)


def _epochs(x: sp.csr_matrix | np.ndarray, y: np.ndarray, batch_size: int, seed: int, start_epoch: int,
            sparse: bool, dtype: np.dtype | type) -> Generator[Batch, None, None]:
    """The endless loop behind :func:`resumable_batches` (arguments already checked)."""
    epoch = start_epoch
    while True:
        order = epoch_order(len(y), seed, epoch)
        for start in range(0, len(y), batch_size):
            index = order[start:start + batch_size]
            yield take_rows(x, index, sparse=sparse, dtype=dtype), y[index]
        epoch += 1


def restored_epoch(backup_dir: str | os.PathLike) -> int:
    """Return the epoch (counted from 0) that ``BackupAndRestore(backup_dir)`` will resume at; 0 if none.

    That is the number of epochs the interrupted run finished, read from the
    metadata file Keras writes after each epoch.
    """
    path = Path(backup_dir) / BACKUP_METADATA
    if not path.is_file():
        return 0
    return int(json.loads(path.read_text())["epoch"])


def _keras():
    """Import Keras only where it is used, so that the launching side stays light."""
    import keras

    return keras


def seed_generator_states(model) -> list:
    """Return the state variables of ``model``'s random seed generators (one per dropout layer), in layer order."""
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


def epoch_seed(seed: int, index: int, epoch: int) -> int:
    """Return the seed of random stream ``index`` in epoch ``epoch`` (counted from 0): a pure function, < 2**31."""
    return int(np.random.SeedSequence([seed, index, epoch]).generate_state(1)[0] & 0x7FFF_FFFF)


def reseed_dropout(seed: int):
    """Return a Keras callback that resets every seed generator of the model at the start of each epoch.

    A Keras seed generator's state is ``[seed, counter]``; each draw (one per
    training step for a dropout layer) uses it and then adds one to the
    counter. ``BackupAndRestore`` does not save that state, so a resumed
    process would start every dropout counter at 0 again and draw the masks
    of the first epochs. Setting the state of generator ``i`` to
    ``[epoch_seed(seed, i, epoch), 0]`` when epoch ``epoch`` begins makes the
    masks, like the batch order, a pure function of ``(seed, epoch)``.
    """
    keras = _keras()

    class ReseedDropout(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            for index, state in enumerate(seed_generator_states(self.model)):
                state.assign(np.asarray([epoch_seed(seed, index, epoch), 0], dtype=state.dtype))

    return ReseedDropout()


def start_epoch_check(start_epoch: int):
    """Return a Keras callback that fails the run if Keras resumes at another epoch than the pipeline.

    ``BackupAndRestore`` sets the starting epoch in ``on_train_begin``, after
    the generator was built; if the two disagree (a backup changed in
    between, a weights file unreadable so that Keras fell back to the
    previous backup) the run would silently train on the wrong batches.
    """
    keras = _keras()

    class StartEpochCheck(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.checked = False

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if not self.checked and epoch != start_epoch:
                raise RuntimeError(f"Keras resumed at epoch {epoch + 1} but the input pipeline starts at epoch "
                                   f"{start_epoch + 1}: the backup changed after restored_epoch() read it")
            self.checked = True

    return StartEpochCheck()


def pause_at(epoch: int, step: int, marker: Path, max_wait: float = 600.0):
    """Return a Keras callback that stops the process after training step ``step`` of epoch ``epoch``.

    Both are counted from 1. The callback writes ``marker`` and then sleeps,
    waiting to be killed; it gives up after ``max_wait`` seconds and ends the
    process with exit status 3, so that a forgotten process does not linger.
    """
    keras = _keras()

    class PauseAt(keras.callbacks.Callback):
        def on_epoch_begin(self, current: int, logs: dict | None = None) -> None:
            self.epoch = current + 1

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if self.epoch == epoch and batch + 1 == step:
                print(f"paused after step {step} of epoch {epoch}, waiting to be killed", flush=True)
                marker.write_text(f"{os.getpid()}\n")
                time.sleep(max_wait)
                os._exit(3)

    return PauseAt()


def save_training_data(path: str | os.PathLike, x_train: sp.spmatrix | np.ndarray, y_train: np.ndarray,
                       x_val: sp.spmatrix | np.ndarray, y_val: np.ndarray, num_classes: int) -> Path:
    """Write training and validation data to one ``.npz`` file for a training process to read.

    Sparse matrices are stored as their CSR parts. The file is written under
    a temporary name and renamed, so a reader never sees half of it.

    Returns:
        The path written.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {"num_classes": np.asarray(num_classes)}
    for name, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
        x, y = check_batch_arguments(x, y, 1)
        if sp.issparse(x):
            arrays |= {f"x_{name}_data": x.data, f"x_{name}_indices": x.indices, f"x_{name}_indptr": x.indptr,
                       f"x_{name}_shape": np.asarray(x.shape)}
        else:
            arrays[f"x_{name}"] = x
        arrays[f"y_{name}"] = y
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, path)
    return path


def load_training_data(path: str | os.PathLike) -> tuple[sp.csr_matrix | np.ndarray, np.ndarray,
                                                         sp.csr_matrix | np.ndarray, np.ndarray, int]:
    """Read what :func:`save_training_data` wrote: ``(x_train, y_train, x_val, y_val, num_classes)``."""
    with np.load(path) as data:
        parts = []
        for name in ("train", "val"):
            if f"x_{name}" in data:
                x = data[f"x_{name}"]
            else:
                x = sp.csr_matrix((data[f"x_{name}_data"], data[f"x_{name}_indices"], data[f"x_{name}_indptr"]),
                                  shape=tuple(data[f"x_{name}_shape"]))
            parts += [x, data[f"y_{name}"]]
        return (*parts, int(data["num_classes"]))


def read_log(path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a ``CSVLogger`` file into ``{column: values}``, one value per epoch in epoch order.

    If an epoch was logged twice (a process killed after logging an epoch but
    before backing it up redoes it), its last row wins. A missing file reads
    as no epochs.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    epochs = sorted(rows)
    columns = list(rows[epochs[0]]) if epochs else []
    return {column: [float(rows[e][column]) for e in epochs] for column in columns}


def save_weights(model, path: Path) -> Path:
    """Write every variable of ``model`` (by path) to an ``.npz`` file, atomically; return ``path``.

    That is the weights, and the state of the dropout layers' seed generators.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as handle:
        np.savez(handle, **{variable.path: variable.numpy() for variable in model.variables})
    os.replace(tmp, path)
    return path


def load_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read what :func:`save_weights` wrote: ``{variable path: array}``."""
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def max_abs_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Return ``max |a - b|`` per weight; both must hold the same weights with the same shapes."""
    if a.keys() != b.keys():
        raise ValueError(f"different weights: {sorted(a.keys() ^ b.keys())}")
    return {name: float(np.max(np.abs(a[name].astype(np.float64) - b[name]), initial=0.0)) for name in a}


@dataclass(frozen=True)
class RunConfig:
    """One resumable training run of the guide's MLP (see :func:`train`).

    Attributes:
        data: ``.npz`` file written by :func:`save_training_data`.
        workdir: the run's folder: backup, log, best model, final weights.
        epochs: epochs to train in all (a resumed run trains the rest).
        batch_size: samples per batch.
        seed: seed of the weights, dropout and shuffling.
        layers, units, dropout_rate, learning_rate: the model (``utils.models.build_mlp``).
        sparse: feed CSR batches to a sparse-input model.
        pause_at: ``(epoch, step)``, counted from 1: stop there and wait to be killed.
        restart_pipeline: the mistake this module exists to avoid: build the
            generator at epoch 0 even when resuming.
        reseed_dropout: reset the dropout layers' random streams at every
            epoch (:func:`reseed_dropout`); without it a resumed run draws
            other dropout masks than an uninterrupted one.
    """

    data: Path
    workdir: Path
    epochs: int
    batch_size: int = 128
    seed: int = 42
    layers: int = 2
    units: int = 64
    dropout_rate: float = 0.2
    learning_rate: float = 1e-3
    sparse: bool = False
    pause_at: tuple[int, int] | None = None
    restart_pipeline: bool = False
    reseed_dropout: bool = True


def train(config: RunConfig) -> None:
    """Train (or resume training) the guide's MLP as ``config`` says; leave the results in ``config.workdir``.

    Callbacks, in order: validation on a fresh pass of the validation
    generator (``utils.training.GeneratorValidation``), ``CSVLogger`` (one row
    per epoch, appended across restarts), ``ModelCheckpoint`` of the best
    ``val_loss`` (its best value so far is read back from the log on a
    restart; the callback itself forgets it), ``BackupAndRestore`` last, so
    that an epoch is backed up only once it is logged. The final weights go
    to ``final_weights.npz``.
    """
    keras = _keras()

    from utils.models import build_mlp
    from utils.runtime import set_seed
    from utils.training import GeneratorValidation

    set_seed(config.seed)
    x_train, y_train, x_val, y_val, num_classes = load_training_data(config.data)
    model = build_mlp(x_train.shape[1], num_classes, layers=config.layers, units=config.units,
                      dropout_rate=config.dropout_rate, learning_rate=config.learning_rate,
                      sparse_input=config.sparse)
    workdir = Path(config.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    backup = workdir / BACKUP_DIR
    resumed = restored_epoch(backup)
    start = 0 if config.restart_pipeline else resumed
    print(f"backup: {resumed} epoch(s) finished; input pipeline starts at epoch {start + 1}", flush=True)
    best_so_far = min(read_log(workdir / LOG_CSV).get("val_loss", []), default=None)
    validation_steps = steps_per_epoch(len(y_val), config.batch_size)
    callbacks = [
        GeneratorValidation(lambda: batch_generator(x_val, y_val, config.batch_size, shuffle=False,
                                                    sparse=config.sparse), validation_steps),
        keras.callbacks.CSVLogger(str(workdir / LOG_CSV), append=True),
        keras.callbacks.ModelCheckpoint(str(workdir / BEST_MODEL), monitor="val_loss", save_best_only=True,
                                        initial_value_threshold=best_so_far),
        keras.callbacks.BackupAndRestore(str(backup), double_checkpoint=True),
    ]
    if config.reseed_dropout:
        callbacks.append(reseed_dropout(config.seed))
    if not config.restart_pipeline:
        callbacks.append(start_epoch_check(start))
    if config.pause_at is not None:
        callbacks.append(pause_at(*config.pause_at, marker=workdir / PAUSED_MARKER))
    model.fit(
        resumable_batches(x_train, y_train, config.batch_size, seed=config.seed, start_epoch=start,
                          sparse=config.sparse),
        steps_per_epoch=steps_per_epoch(len(y_train), config.batch_size), epochs=config.epochs,
        shuffle=False, verbose=2, callbacks=callbacks,
    )
    save_weights(model, workdir / FINAL_WEIGHTS)
    print(f"finished: weights in {workdir / FINAL_WEIGHTS}", flush=True)


def command(config: RunConfig) -> list[str]:
    """Return the command line that runs :func:`train` with ``config`` in a new Python process."""
    args = [sys.executable, "-m", "utils.resumable"]
    for name, value in asdict(config).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args += [flag if value else "--no-" + flag[2:]]
        elif name == "pause_at":
            args += [flag, f"{value[0]}:{value[1]}"] if value is not None else []
        else:
            args += [flag, str(value)]
    return args


def launch(config: RunConfig, output: Path) -> subprocess.Popen:
    """Start :func:`train` with ``config`` in a new process writing its output to ``output``; return it.

    The process's output is unbuffered (``PYTHONUNBUFFERED=1``), so that
    ``output`` holds everything it printed up to the moment it is killed.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    with open(output, "ab") as handle:
        return subprocess.Popen(command(config), stdout=handle, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)


def training_output(path: str | os.PathLike) -> str:
    """Return what a training process wrote to ``path``, less TensorFlow's start-up log lines.

    Those are the C++ lines (``I0000 ...``, ``E0000 ...``) and absl's warning
    about them that TensorFlow prints while it loads, before the quieting of
    ``TF_CPP_MIN_LOG_LEVEL`` takes effect.
    """
    lines = Path(path).read_text().splitlines()
    noise = ("I0000 ", "W0000 ", "E0000 ", "WARNING: All log messages before absl::InitializeLog()")
    return "\n".join(line for line in lines if not line.startswith(noise))


def kill_when_paused(process: subprocess.Popen, marker: Path, timeout: float = 300.0) -> int:
    """Wait until ``process`` writes ``marker`` (see :func:`pause_at`), then SIGKILL it; return its exit status.

    The status of a process killed by ``SIGKILL`` is ``-9``.

    Raises:
        RuntimeError: the process ended before pausing.
        TimeoutError: it did not pause within ``timeout`` seconds (it is killed anyway).
    """
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            raise RuntimeError(f"process {process.pid} ended with status {process.returncode} before pausing")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise TimeoutError(f"process {process.pid} did not pause within {timeout} s; killed it")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    return process.wait()


def parse_args(argv: Sequence[str] | None = None) -> RunConfig:
    """Parse the command line written by :func:`command`."""
    parser = argparse.ArgumentParser(prog="python -m utils.resumable", description=train.__doc__.splitlines()[0])
    defaults = RunConfig(Path(), Path(), 1)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    for name in ("batch_size", "seed", "layers", "units"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("dropout_rate", "learning_rate"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    parser.add_argument("--sparse", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--restart-pipeline", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--reseed-dropout", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--pause-at", type=lambda text: tuple(int(part) for part in text.split(":")),
                        metavar="EPOCH:STEP")
    return RunConfig(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    from utils.runtime import quiet_tensorflow

    quiet_tensorflow()
    train(parse_args())
