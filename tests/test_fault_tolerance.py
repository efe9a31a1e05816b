"""Tests of utils.resumable: a training process killed mid-epoch resumes to the weights of an uninterrupted run.

The data are synthetic (320 random training rows of 30 features, the label a linear function of two of them),
the model the guide's MLP at 16 units: small enough that each training process spends most of its time
importing TensorFlow. The processes are real: they are started with subprocess and killed with SIGKILL.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from utils import batching, callbacks, resumable
from utils.processes import ProcessGroup, kill_when_marked, log_text
from utils.resumable import RunConfig

EPOCHS = 4
PAUSE = (3, 5)  # killed after training step 5 of epoch 3 (10 steps an epoch)


def synthetic_data(path: Path) -> Path:
    """Write a small synthetic two-class problem for training processes to read."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 30)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return resumable.save_training_data(path, x[:320], y[:320], x[320:], y[320:], num_classes=2)


def config(data: Path, workdir: Path, **changes: object) -> RunConfig:
    """The small run every test here trains."""
    return RunConfig(data, workdir, epochs=EPOCHS, batch_size=32, units=16, **changes)


def finish(process, output: Path) -> None:
    """Wait for a training process and fail with its output if it did not succeed."""
    assert process.wait(timeout=240) == 0, output.read_text()[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("fault_tolerance")
    with ProcessGroup(root / "logs") as group:
        yield train_runs(root, group)


def train_runs(root: Path, group: ProcessGroup) -> dict[str, Path]:
    """One uninterrupted run, and one killed at PAUSE then resumed three ways (processes run two at a time).

    Resumed ``exact`` (pipeline and dropout restored), ``restart_pipeline`` (the generator starts at epoch 1
    again) and ``no_reseed`` (dropout streams not reset per epoch) from copies of the same backup.
    """
    data = synthetic_data(root / "data.npz")
    uninterrupted = resumable.launch(config(data, root / "uninterrupted"), group, "uninterrupted")
    killed = resumable.launch(config(data, root / "exact", pause_at=PAUSE), group, "killed")
    status = kill_when_marked(killed, root / "exact" / resumable.PAUSED_MARKER, timeout=240)
    assert status == -9
    (root / "killed_state.json").write_text(json.dumps({
        "log_epochs": resumable.read_log(root / "exact" / resumable.LOG_CSV).get("epoch", []),
        "backup": sorted(p.name for p in (root / "exact" / resumable.BACKUP_DIR).iterdir()),
        "restored_epoch": resumable.restored_epoch(root / "exact" / resumable.BACKUP_DIR),
    }))
    for variant in ("restart_pipeline", "no_reseed"):
        shutil.copytree(root / "exact", root / variant)
    finish(uninterrupted, group.log("uninterrupted"))
    variants = {"exact": {}, "restart_pipeline": {"restart_pipeline": True}, "no_reseed": {"reseed_dropout": False}}
    processes = [(resumable.launch(config(data, root / name, **changes), group, name), group.log(name))
                 for name, changes in variants.items()]
    for process, output in processes:
        finish(process, output)
    return {name: root / name for name in ["uninterrupted", *variants]} | {"root": root}


def weights_difference(runs: dict[str, Path], name: str) -> float:
    """Largest |w_name - w_uninterrupted| over the model's weights (the dropout streams' states left out)."""
    a = resumable.load_weights(runs["uninterrupted"] / resumable.FINAL_WEIGHTS)
    b = resumable.load_weights(runs[name] / resumable.FINAL_WEIGHTS)
    differences = resumable.max_abs_difference(a, b)
    return max(value for path, value in differences.items() if not path.endswith("seed_generator_state"))


def test_killed_mid_epoch_resumes_from_last_completed_epoch(runs: dict[str, Path]) -> None:
    state = json.loads((runs["root"] / "killed_state.json").read_text())
    assert state["log_epochs"] == [0.0, 1.0]  # two epochs finished and logged when the kill came
    assert state["restored_epoch"] == 2
    assert "latest.weights.h5" in state["backup"] and "training_metadata.json" in state["backup"]
    assert "paused after step 5 of epoch 3" in (runs["root"] / "logs" / "killed.log").read_text()
    resumed = (runs["root"] / "logs" / "exact.log").read_text()
    assert "backup: 2 epoch(s) finished; input pipeline starts at epoch 3" in resumed
    assert "Epoch 3/4" in resumed and "Epoch 1/4" not in resumed and "Epoch 2/4" not in resumed
    assert resumable.read_log(runs["exact"] / resumable.LOG_CSV)["epoch"] == [0.0, 1.0, 2.0, 3.0]
    assert (runs["exact"] / resumable.BEST_MODEL).is_file()
    assert not (runs["exact"] / resumable.BACKUP_DIR).exists()  # deleted once training completed


def test_killed_and_resumed_run_ends_with_same_weights_as_uninterrupted(runs: dict[str, Path]) -> None:
    """Observed bit-exact (0.0) on CPU; the tolerance only allows for float reordering elsewhere."""
    assert weights_difference(runs, "exact") <= 1e-6
    a = resumable.load_weights(runs["uninterrupted"] / resumable.FINAL_WEIGHTS)
    b = resumable.load_weights(runs["exact"] / resumable.FINAL_WEIGHTS)
    assert sum(path.endswith("seed_generator_state") for path in a) == 2
    for path in a:
        if path.endswith("seed_generator_state"):
            np.testing.assert_array_equal(a[path], b[path])  # the dropout streams ended in the same state
    uninterrupted = resumable.read_log(runs["uninterrupted"] / resumable.LOG_CSV)
    resumed = resumable.read_log(runs["exact"] / resumable.LOG_CSV)
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(resumed[column], uninterrupted[column], atol=1e-6)


def test_resume_with_pipeline_restarted_at_epoch_one_ends_elsewhere(runs: dict[str, Path]) -> None:
    """The comparison above can see a difference: a generator that forgets its epoch gives other weights."""
    assert weights_difference(runs, "restart_pipeline") > 1e-3


def test_resume_without_dropout_reseed_ends_elsewhere(runs: dict[str, Path]) -> None:
    """BackupAndRestore does not save the dropout layers' random state: without reseeding, other masks."""
    assert weights_difference(runs, "no_reseed") > 1e-3


def test_keras_backup_lacks_dropout_seed_state_and_restored_epoch_reads_it(tmp_path: Path) -> None:
    """What BackupAndRestore writes (Keras 3.15), in process: the reason for reseed_dropout and restored_epoch."""
    import h5py
    import keras

    from utils.models import build_mlp

    keras.utils.set_random_seed(0)
    model = build_mlp(6, 2, units=4)
    x = np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if epoch == 2:
                raise KeyboardInterrupt

    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, (x[:, 0] > 0).astype(np.int64), epochs=5, batch_size=8, verbose=0,
                  callbacks=[keras.callbacks.BackupAndRestore(str(backup)), Interrupt()])
    assert resumable.restored_epoch(backup) == 2
    assert resumable.restored_epoch(tmp_path / "no_backup") == 0
    names: list[str] = []
    with h5py.File(backup / resumable.BACKUP_WEIGHTS) as weights:
        weights.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    assert any(name.startswith("optimizer/") for name in names)  # Adam's moments are saved
    assert any(name.startswith("layers/dense") for name in names)
    assert not any("seed" in name or "dropout" in name for name in names)  # dropout's random state is not
    assert len(callbacks.seed_generator_states(model)) == 2  # though the model has two dropout streams


def test_epoch_order_is_a_pure_function_of_seed_and_epoch() -> None:
    first = [batching.epoch_order(50, seed=7, epoch=e) for e in range(4)]
    again = [batching.epoch_order(50, seed=7, epoch=e) for e in reversed(range(4))][::-1]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        assert sorted(a.tolist()) == list(range(50))
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], batching.epoch_order(50, seed=8, epoch=0))


@pytest.mark.parametrize("start_epoch", [1, 3])
def test_batch_generator_from_start_epoch_continue_an_uninterrupted_stream(start_epoch: int) -> None:
    """Synthetic rows whose labels are their row numbers: a generator started at epoch k yields what one
    started at 0 yields after k epochs."""
    x = np.arange(22 * 3, dtype=np.float32).reshape(22, 3)
    y = np.arange(22)
    steps = 3  # batches of 8: 8 + 8 + 6
    whole = batching.batch_generator(x, y, 8, seed=1)
    stream = [next(whole) for _ in range((start_epoch + 2) * steps)]
    resumed = batching.batch_generator(x, y, 8, seed=1, start_epoch=start_epoch)
    for expected in stream[start_epoch * steps:]:
        xb, yb = next(resumed)
        np.testing.assert_array_equal(yb, expected[1])
        np.testing.assert_array_equal(xb, expected[0])
    epoch = np.concatenate([yb for _, yb in stream[:steps]])
    np.testing.assert_array_equal(epoch, batching.epoch_order(22, 1, 0))


@pytest.mark.parametrize(("batch_size", "start_epoch", "message"), [(0, 0, "batch_size"), (4, -1, "start_epoch")])
def test_batch_generator_bad_batch_size_or_start_epoch_raise_at_creation(batch_size: int, start_epoch: int,
                                                                           message: str) -> None:
    with pytest.raises(ValueError, match=message):
        batching.batch_generator(np.zeros((4, 2)), np.zeros(4), batch_size, seed=0, start_epoch=start_epoch)


def test_reseed_dropout_sets_each_stream_from_seed_and_epoch() -> None:
    import keras

    from utils.models import build_mlp

    model = build_mlp(6, 2, units=4)
    callback = callbacks.ReseedDropout(seed=5)
    callback.set_model(model)
    callback.on_epoch_begin(3)
    states = [state.numpy().tolist() for state in callbacks.seed_generator_states(model)]
    assert states == [[callbacks.epoch_seed(5, 0, 3), 0], [callbacks.epoch_seed(5, 1, 3), 0]]
    assert states[0] != states[1]
    assert callbacks.epoch_seed(5, 0, 3) != callbacks.epoch_seed(5, 0, 4)
    assert isinstance(callback, keras.callbacks.Callback)


def test_read_log_keeps_last_row_of_an_epoch_logged_twice(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss,val_loss\n0,0.9,0.8\n1,0.7,0.6\n1,0.5,0.4\n2,0.3,0.2\n")
    assert resumable.read_log(path) == {"epoch": [0.0, 1.0, 2.0], "loss": [0.9, 0.5, 0.3],
                                        "val_loss": [0.8, 0.4, 0.2]}
    assert resumable.read_log(tmp_path / "missing.csv") == {}


def test_command_line_round_trips_the_config(tmp_path: Path) -> None:
    original = RunConfig(tmp_path / "d.npz", tmp_path / "w", epochs=3, batch_size=16, seed=9, sparse=True,
                         pause_at=(2, 4), restart_pipeline=True, reseed_dropout=False, learning_rate=0.01)
    assert resumable.parse_args(resumable.command_args(original)) == original
    default = RunConfig(tmp_path / "d.npz", tmp_path / "w", epochs=3)
    assert resumable.parse_args(resumable.command_args(default)) == default


def test_kill_when_marked_reports_a_process_that_ended_first(tmp_path: Path) -> None:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"])
    with pytest.raises(RuntimeError, match="status 4 before never"):
        kill_when_marked(process, tmp_path / "never", timeout=60)


def test_log_text_drops_tensorflow_start_up_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    "I0000 00:00:1 port.cc:153] oneDNN custom operations are on.\n"
                    "E0000 00:00:1 cuda_platform.cc:52] failed call to cuInit\n"
                    "Epoch 1/4\n16/16 - 2s - loss: 0.6\n")
    assert log_text(path) == "Epoch 1/4\n16/16 - 2s - loss: 0.6"
