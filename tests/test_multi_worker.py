"""Tests of utils.multi_worker and utils.processes' ProcessGroup: TF_CONFIG, ports, clean-up, a real two-worker run.

The training data here is synthetic (a small linearly separable sparse problem, written as TFRecord
shards); the two-worker run is real: two processes on 127.0.0.1 joined by MultiWorkerMirroredStrategy.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import scipy.sparse as sp
import tensorflow as tf

from utils import REPO_ROOT, shards
from utils.multi_worker import (
    TF_CONFIG,
    TrainConfig,
    free_ports,
    start_data_service,
    tf_config,
    train_cluster,
    worker_lines,
)
from utils.processes import ChildProcessError, ProcessGroup, error_message


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie nobody reaped counts as ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(condition, timeout: float) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def accepts_connections(port: int) -> bool:
    """Whether a TCP connection to ``127.0.0.1:port`` succeeds now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def test_tf_config_names_the_cluster_and_the_task() -> None:
    addresses = ["10.0.0.1:2222", "10.0.0.2:2222"]
    assert tf_config(addresses, 1) == {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": 1}}


@pytest.mark.parametrize(("addresses", "index", "message"), [
    ([], 0, "at least one worker"),
    (["localhost"], 0, "is not 'host:port'"),
    (["a:1", "a:1"], 0, "must differ"),
    (["a:1", "b:1"], 2, r"index must be in \[0, 2\)"),
])
def test_tf_config_refuses_bad_clusters(addresses: list[str], index: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tf_config(addresses, index)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    with pytest.raises(ValueError, match="count must be >= 1"):
        free_ports(0)


def test_train_config_round_trip_and_checks(tmp_path: Path) -> None:
    config = TrainConfig(shard_dir="/data/shards", epochs=2, global_batch_size=64, sparse=False)
    assert TrainConfig.load(config.save(tmp_path / "config.json")) == config
    for bad, message in (({"epochs": 0}, "epochs"), ({"global_batch_size": 0}, "global_batch_size"),
                         ({"loop": "keras"}, "loop must be one of")):
        with pytest.raises(ValueError, match=message):
            TrainConfig(shard_dir="x", **bad)


def test_error_message_finds_the_exception_of_the_last_traceback(tmp_path: Path) -> None:
    log = tmp_path / "worker-0.log"
    log.write_text("\n".join([
        "[worker 0] starting",
        "Traceback (most recent call last):",
        '  File "a.py", line 1, in <module>',
        "KeyError: 'first'",
        "Traceback (most recent call last):",
        '  File "b.py", line 2, in f',
        "    f()",
        "ValueError: Attempt to convert (PerReplica:{",
        "  0: " + "x" * 1000,
        "}) to a Tensor.",
        "E0000 00:00:1 base_collective_executor.cc:252] StartAbort",
    ]))
    message = error_message(log, width=120)
    assert message.startswith("ValueError: Attempt to convert (PerReplica:{ 0: xxx")
    assert message.endswith("xxx }) to a Tensor.") and len(message) <= 120
    assert error_message(tmp_path / "missing.log") == ""
    assert worker_lines(log) == ["[worker 0] starting"]


def test_a_failing_worker_stops_the_others(tmp_path: Path) -> None:
    config = TrainConfig(shard_dir=str(tmp_path)).save(tmp_path / "config.json")
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    with ProcessGroup(tmp_path) as group:
        # worker-0 joins a cluster of two and waits for its peer, which fails at once: no TF_CONFIG.
        train = ["train", "--config", str(config), "--output", str(tmp_path)]
        waiting = group.start("worker-0", "utils.multi_worker", train,
                              env={TF_CONFIG: json.dumps(tf_config(addresses, 0))})
        env_without = {k: v for k, v in os.environ.items() if k != TF_CONFIG}
        group.start("worker-1", "utils.multi_worker", train, env=env_without)
        with pytest.raises(ChildProcessError, match=r"worker-1 exited with code 2; the others were stopped"):
            group.wait(timeout=120)
        assert group.alive() == []
        assert waiting.returncode is not None
    assert "TF_CONFIG is not set" in group.log("worker-1").read_text()


def test_leaving_the_block_through_an_exception_stops_every_process(tmp_path: Path) -> None:
    dispatcher, worker = free_ports(2)
    with pytest.raises(RuntimeError, match="a cell failed"):
        with ProcessGroup(tmp_path) as group:
            group.start("data-service", "utils.multi_worker",
                        ["serve", "--dispatcher-port", str(dispatcher), "--worker-port", str(worker)])
            process = group.processes["data-service"]
            raise RuntimeError("a cell failed")
    assert process.poll() is not None and gone(process.pid)


def test_wait_stops_everything_after_the_timeout(tmp_path: Path) -> None:
    dispatcher, worker = free_ports(2)
    with ProcessGroup(tmp_path) as group:
        process = group.start("data-service", "utils.multi_worker", ["serve", "--dispatcher-port", str(dispatcher),
                                               "--worker-port", str(worker)])
        with pytest.raises(ChildProcessError, match=r"still running after 1 s were stopped: \['data-service'\]"):
            group.wait(timeout=1)
        assert process.poll() is not None


def test_workers_exit_when_their_launcher_is_killed(tmp_path: Path) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from utils.multi_worker import free_ports\n"
            "from utils.processes import ProcessGroup\n"
            "group = ProcessGroup(sys.argv[1])\n"
            "d, w = free_ports(2)\n"
            "process = group.start('data-service', 'utils.multi_worker',\n"
            "                      ['serve', '--dispatcher-port', str(d), '--worker-port', str(w)])\n"
            "print(process.pid, d, flush=True)\n"
            "time.sleep(600)\n"
        ), str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        child, port = map(int, launcher.stdout.readline().split())
        # Wait until the worker serves (TensorFlow imported, its parent watch running) before killing the launcher.
        assert wait_until(lambda: accepts_connections(port), timeout=120)
        launcher.send_signal(signal.SIGKILL)  # no finalizers, no atexit: only the child's own watch is left
        launcher.wait()
        assert wait_until(lambda: gone(child), timeout=20), "the orphaned worker kept running"
    finally:
        launcher.kill()
        launcher.wait()


def synthetic_shards(directory: Path) -> None:
    """Write a synthetic, linearly separable sparse problem: label 1 iff feature 0 > feature 1."""
    rng = np.random.default_rng(0)
    for name, rows in (("train", 512), ("val", 128)):
        dense = rng.random((rows, 20)).astype(np.float32) * (rng.random((rows, 20)) < 0.3)
        dense[:, :2] = rng.random((rows, 2))
        labels = (dense[:, 0] > dense[:, 1]).astype(np.int64)
        shards.write_shards(sp.csr_matrix(dense), labels, directory, name, num_shards=4)


def test_two_workers_train_one_model(tmp_path: Path) -> None:
    synthetic_shards(tmp_path / "shards")
    config = TrainConfig(shard_dir=str(tmp_path / "shards"), epochs=3, global_batch_size=32,
                         learning_rate=1e-2, shuffle_buffer=64)
    (chief, other), seconds = train_cluster(2, config, tmp_path / "run", timeout=240)
    assert chief["cluster"] == other["cluster"] and len(set(chief["cluster"])) == 2 and seconds > 0
    assert (chief["num_workers"], chief["per_worker_batch_size"], chief["steps_per_epoch"]) == (2, 16, 16)
    # Metrics are summed over both workers, so both report the same numbers.
    assert chief["history"] == other["history"]
    assert chief["history"]["val_accuracy"][-1] > 0.75
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "config.json", "logs", "model.keras", "worker-0.json", "worker-1.json"]
    logs = tmp_path / "run" / "logs"
    assert any("epoch 3/3" in line and "model saved" in line for line in worker_lines(logs / "worker-0.log"))
    assert not any("model saved" in line for line in worker_lines(logs / "worker-1.log"))


def test_data_service_serves_the_same_batches(tmp_path: Path) -> None:
    synthetic_shards(tmp_path)
    manifest = shards.read_manifest(tmp_path, "val")
    local = shards.make_dataset(manifest.paths(tmp_path), manifest.num_features, 16, sparse=False)
    with ProcessGroup(tmp_path / "logs") as group:
        address = start_data_service(group)
        served = local.apply(tf.data.experimental.service.distribute("parallel_epochs", address))
        labels = sorted(np.concatenate([y.numpy() for _, y in served]).tolist())
    assert labels == sorted(np.concatenate([y.numpy() for _, y in local]).tolist())
    assert group.alive() == []
