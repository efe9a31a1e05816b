"""Training that survives being killed: Keras' BackupAndRestore, plus an input pipeline that resumes too.

``keras.callbacks.BackupAndRestore`` writes the model's weights, the
optimizer's state and the number of finished epochs to a folder at the end of
every epoch, and a later ``model.fit`` given the same callback starts from
there. It knows nothing about the data: a generator built the usual way
starts again with its first epoch's order after a restart, so the resumed run
trains on other batches than an uninterrupted run would have.

The missing half lives where its pieces belong and is put together here:

* the batch order: :func:`utils.batching.batch_generator` draws each epoch's
  order from ``(seed, epoch)`` and starts at any ``start_epoch``;
* the dropout masks: :class:`utils.callbacks.ReseedDropout`, because
  ``BackupAndRestore`` does not save the seed generators' state;
* :func:`restored_epoch` reads, before ``fit`` starts, the epoch that
  ``BackupAndRestore`` is going to resume at: Keras draws the first batches
  from a generator before any callback runs, so the generator must know its
  starting epoch when it is built (:class:`utils.callbacks.StartEpochCheck`
  verifies that Keras agreed);
* :func:`train` is a whole resumable training run, meant to run in its own
  process (``python -m utils.resumable``, started by :func:`launch`). It keeps
  the best model with :class:`utils.callbacks.AtomicModelCheckpoint` and logs
  every epoch to a CSV file that survives the kill; with ``pause_at`` it
  stops at a chosen step (:class:`utils.callbacks.PauseAt`) to be killed there
  (:func:`utils.processes.kill_when_marked`).

Every file it writes (its input ``.npz``, the final weights, the best model)
is replaced whole (:func:`utils.processes.atomic_write`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import scipy.sparse as sp

from utils.batching import batch_generator, check_batch_arguments, steps_per_epoch
from utils.callbacks import (
    AtomicModelCheckpoint,
    GeneratorValidation,
    PauseAt,
    ReseedDropout,
    StartEpochCheck,
)
from utils.models import build_mlp
from utils.processes import ProcessGroup, atomic_write, watch_parent
from utils.runtime import set_seed

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


def restored_epoch(backup_dir: str | os.PathLike) -> int:
    """Return the epoch (counted from 0) that ``BackupAndRestore(backup_dir)`` will resume at; 0 if none.

    That is the number of epochs the interrupted run finished, read from the
    metadata file Keras writes after each epoch.
    """
    path = Path(backup_dir) / BACKUP_METADATA
    if not path.is_file():
        return 0
    return int(json.loads(path.read_text())["epoch"])


def save_training_data(path: str | os.PathLike, x_train: sp.spmatrix | np.ndarray, y_train: np.ndarray,
                       x_val: sp.spmatrix | np.ndarray, y_val: np.ndarray, num_classes: int) -> Path:
    """Write training and validation data to one ``.npz`` file for a training process to read.

    Sparse matrices are stored as their CSR parts. The file is replaced whole
    (:func:`utils.processes.atomic_write`).

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
    with atomic_write(path) as tmp:
        np.savez(tmp, **arrays)
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


def save_weights(model: keras.Model, path: Path) -> Path:
    """Write every variable of ``model`` (by path) to an ``.npz`` file, atomically; return ``path``.

    That is the weights, and the state of the dropout layers' seed generators.
    """
    with atomic_write(path) as tmp:
        np.savez(tmp, **{variable.path: variable.numpy() for variable in model.variables})
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
    generator (:class:`utils.callbacks.GeneratorValidation`), ``CSVLogger``
    (one row per epoch, appended across restarts),
    :class:`utils.callbacks.AtomicModelCheckpoint` of the best ``val_loss``
    (its best value so far is read back from the log on a restart; the
    callback itself forgets it), ``BackupAndRestore``, so that an epoch is
    backed up only once it is logged and checkpointed; then the callbacks
    that only act at an epoch's start or at a step (:class:`ReseedDropout`,
    :class:`StartEpochCheck`, :class:`PauseAt`). The final weights go to
    ``final_weights.npz``.
    """
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
        AtomicModelCheckpoint(workdir / BEST_MODEL, monitor="val_loss", save_best_only=True,
                              initial_value_threshold=best_so_far),
        keras.callbacks.BackupAndRestore(str(backup), double_checkpoint=True),
    ]
    if config.reseed_dropout:
        callbacks.append(ReseedDropout(config.seed))
    if not config.restart_pipeline:
        callbacks.append(StartEpochCheck(start))
    if config.pause_at is not None:
        callbacks.append(PauseAt(*config.pause_at, marker=workdir / PAUSED_MARKER))
    model.fit(
        batch_generator(x_train, y_train, config.batch_size, seed=config.seed, start_epoch=start,
                        sparse=config.sparse),
        steps_per_epoch=steps_per_epoch(len(y_train), config.batch_size), epochs=config.epochs,
        shuffle=False, verbose=2, callbacks=callbacks,
    )
    save_weights(model, workdir / FINAL_WEIGHTS)
    print(f"finished: weights in {FINAL_WEIGHTS}", flush=True)


def command_args(config: RunConfig) -> list[str]:
    """Return the command-line arguments of ``python -m utils.resumable`` that run :func:`train` with ``config``."""
    args = []
    for name, value in asdict(config).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args += [flag if value else "--no-" + flag[2:]]
        elif name == "pause_at":
            args += [flag, f"{value[0]}:{value[1]}"] if value is not None else []
        else:
            args += [flag, str(value)]
    return args


def launch(config: RunConfig, group: ProcessGroup, name: str) -> subprocess.Popen:
    """Start :func:`train` with ``config`` as process ``name`` of ``group``; return it.

    Its output goes to ``group.log(name)``, unbuffered, so the log holds
    everything it printed up to the moment it is killed.
    """
    return group.start(name, "utils.resumable", command_args(config))


def parse_args(argv: Sequence[str] | None = None) -> RunConfig:
    """Parse the command line written by :func:`command`."""
    parser = argparse.ArgumentParser(prog="python -m utils.resumable", description=train.__doc__.splitlines()[0])
    parser.add_argument("--parent-pid", type=int, help="exit when this process is no longer the parent")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    defaults = RunConfig(Path(), Path(), 1)
    for name in ("batch_size", "seed", "layers", "units"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("dropout_rate", "learning_rate"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    parser.add_argument("--sparse", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--restart-pipeline", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--reseed-dropout", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--pause-at", type=lambda text: tuple(int(part) for part in text.split(":")),
                        metavar="EPOCH:STEP")
    args = vars(parser.parse_args(argv))
    parent_pid = args.pop("parent_pid")
    if parent_pid is not None:
        watch_parent(parent_pid)
    return RunConfig(**args)


if __name__ == "__main__":
    train(parse_args())
