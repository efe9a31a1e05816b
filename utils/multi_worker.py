"""Training the series' MLP on several processes with ``tf.distribute.MultiWorkerMirroredStrategy``.

Two halves, for the two sides of a cluster:

* the **worker** (``python -m utils.multi_worker train --config C --output O``): one
  process per host (here: per port on ``127.0.0.1``). It reads ``TF_CONFIG``
  from its environment, joins the others through
  ``MultiWorkerMirroredStrategy``, reads its own share of the TFRecord shards
  (:mod:`utils.shards`), trains, and writes its history, timings and memory
  timeline to ``<output>/worker-<index>.json``; the chief (worker 0) also
  saves the model. Every worker holds a full copy of the model; at each
  step each worker computes gradients on its part of the global batch, the
  gradients are summed across workers (an all-reduce), and every copy
  applies the same update.
* the **launcher** (:func:`start_training`, :func:`train_cluster`): picks
  free ports, builds each worker's ``TF_CONFIG`` and starts the workers in a
  :class:`utils.processes.ProcessGroup`, which keeps their logs in files,
  waits for them, and makes sure none is left running.

``python -m utils.multi_worker serve --dispatcher-port P --worker-port Q`` runs
a ``tf.data`` service (a dispatcher and one worker) on ``127.0.0.1`` until stopped;
:func:`start_data_service` starts one.

The launcher uses process groups and signals: Linux and macOS (WSL2 on Windows).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from utils import models, shards
from utils.callbacks import ms_per_step
from utils.memory import MemoryMonitor
from utils.processes import ChildProcessError, ProcessGroup, atomic_write, error_message, watch_parent, write_json

#: The environment variable TensorFlow reads a worker's cluster and role from.
TF_CONFIG = "TF_CONFIG"
LOCALHOST = "127.0.0.1"
#: Every line a process of ours prints about its progress starts with this (``[worker 0] ...``,
#: ``[data-service] ...``); TensorFlow's own log lines never do.
LOG_PREFIX = "["
LOOPS = ("custom", "fit")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a worker needs besides ``TF_CONFIG``; the same for every worker of a run.

    Attributes:
        shard_dir: folder of the shards and manifests (:func:`utils.shards.write_shards`),
            readable by every worker.
        train_name: manifest name of the training shards.
        val_name: manifest name of the validation shards.
        epochs: number of epochs, >= 1 (no early stopping: runs to compare take the same steps).
        global_batch_size: samples per step summed over all workers; each of ``n`` workers
            takes ``global_batch_size / n``.
        seed: seed of the initial weights, dropout and shuffling.
        sparse: feed ``tf.SparseTensor`` batches to a sparse-input model, else dense batches.
        units: width of the MLP's hidden layer.
        dropout_rate: the MLP's dropout rate.
        learning_rate: Adam's learning rate.
        shuffle_buffer: records in each worker's shuffle buffer.
        loop: ``"custom"`` (the training loop of :func:`make_steps`) or ``"fit"`` (``model.fit``,
            which Keras 3 cannot run on more than one worker: kept to show the error).
    """

    shard_dir: str
    train_name: str = "train"
    val_name: str = "val"
    epochs: int = 3
    global_batch_size: int = 128
    seed: int = 42
    sparse: bool = True
    units: int = 64
    dropout_rate: float = 0.2
    learning_rate: float = 1e-3
    shuffle_buffer: int = 10_000
    loop: str = "custom"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.global_batch_size < 1:
            raise ValueError(f"global_batch_size must be >= 1, got {self.global_batch_size}")
        if self.loop not in LOOPS:
            raise ValueError(f"loop must be one of {LOOPS}, got {self.loop!r}")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the configuration as JSON to ``path``; return the path."""
        return write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a configuration written by :meth:`save`."""
        return cls(**json.loads(Path(path).read_text()))


# --------------------------------------------------------------------------------------------- cluster set-up


def free_ports(count: int, host: str = LOCALHOST) -> list[int]:
    """Return ``count`` distinct TCP ports on ``host`` that were free a moment ago.

    The operating system picks each (bind to port 0); all sockets stay open
    until every port is chosen, so the ports differ. Another program could
    still take a port before the worker binds it; the worker then fails to
    start and says so in its log.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
    return ports


def tf_config(addresses: Sequence[str], index: int) -> dict:
    """Return worker ``index``'s ``TF_CONFIG``: the whole cluster, and which member this process is.

    Args:
        addresses: ``"host:port"`` of every worker, in the same order for all of them;
            worker 0 is the chief.
        index: this worker's position in ``addresses``.

    Raises:
        ValueError: no addresses, an address without a port, duplicates, or ``index`` out of range.
    """
    if not addresses:
        raise ValueError("a cluster needs at least one worker address")
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"worker address {address!r} is not 'host:port'")
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"worker addresses must differ, got {list(addresses)}")
    if not 0 <= index < len(addresses):
        raise ValueError(f"index must be in [0, {len(addresses)}), got {index}")
    return {"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}}


# --------------------------------------------------------------------------------------------- logs and reports


def worker_lines(path: str | os.PathLike) -> list[str]:
    """Return the progress lines a process printed to its log (those starting with :data:`LOG_PREFIX`)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [line for line in path.read_text(errors="replace").splitlines() if line.startswith(LOG_PREFIX)]


def read_reports(output_dir: str | os.PathLike, num_workers: int) -> list[dict]:
    """Read the ``worker-<index>.json`` reports of a finished run, worker 0 first.

    Raises:
        FileNotFoundError: a worker left no report (it failed or was stopped).
    """
    paths = [Path(output_dir) / f"worker-{index}.json" for index in range(num_workers)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no report from {', '.join(missing)}: did the run finish?")
    return [json.loads(p.read_text()) for p in paths]


# --------------------------------------------------------------------------------------------- launcher


def start_training(group: ProcessGroup, num_workers: int, config_path: str | os.PathLike,
                   output_dir: str | os.PathLike) -> list[str]:
    """Start ``num_workers`` training workers (``worker-0``, ...) in ``group``, on free ports of ``127.0.0.1``.

    Returns:
        The worker addresses, worker 0 (the chief) first.
    """
    addresses = [f"{LOCALHOST}:{port}" for port in free_ports(num_workers)]
    for index in range(num_workers):
        group.start(f"worker-{index}", "utils.multi_worker",
                    ["train", "--config", str(config_path), "--output", str(output_dir)],
                    env={TF_CONFIG: json.dumps(tf_config(addresses, index))})
    return addresses


def start_data_service(group: ProcessGroup, timeout: float = 120.0) -> str:
    """Start a ``tf.data`` service (dispatcher and one worker) as process ``data-service`` of ``group``.

    Returns:
        The dispatcher's address, ``grpc://127.0.0.1:<port>``, once both servers accept connections.

    Raises:
        ChildProcessError: the process exited, or the servers did not answer within ``timeout`` seconds.
    """
    dispatcher_port, worker_port = free_ports(2)
    process = group.start("data-service", "utils.multi_worker",
                          ["serve", "--dispatcher-port", str(dispatcher_port), "--worker-port", str(worker_port)])
    deadline = time.monotonic() + timeout
    for port in (dispatcher_port, worker_port):
        while not _accepts_connections(LOCALHOST, port):
            if process.poll() is not None:
                raise ChildProcessError(f"data-service exited with code {process.returncode}: "
                                        f"{error_message(group.log('data-service'))}")
            if time.monotonic() > deadline:
                group.stop()
                raise ChildProcessError(f"data-service did not accept connections on port {port} within "
                                        f"{timeout:.0f} s")
            time.sleep(0.2)
    return f"grpc://{LOCALHOST}:{dispatcher_port}"


def train_cluster(num_workers: int, config: TrainConfig, output_dir: str | os.PathLike,
                  timeout: float = 600.0) -> tuple[list[dict], float]:
    """Train with ``num_workers`` local workers until they finish; return their reports and the wall time.

    Writes ``<output_dir>/config.json``, the workers' logs in ``<output_dir>/logs/``
    and their reports and the chief's model in ``<output_dir>``. No worker is
    left running when this returns or raises.

    Returns:
        ``(reports, seconds)``: :func:`read_reports` of the run, and the seconds from start to the
        last worker's exit (process start-up included).

    Raises:
        ChildProcessError: a worker failed or the run took longer than ``timeout`` seconds.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    config_path = config.save(output_dir / "config.json")
    start = time.perf_counter()
    with ProcessGroup(output_dir / "logs") as group:
        start_training(group, num_workers, config_path, output_dir)
        group.wait(timeout)
    return read_reports(output_dir, num_workers), time.perf_counter() - start


def _accepts_connections(host: str, port: int) -> bool:
    """Return whether a TCP connection to ``host:port`` succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------- worker side


def make_steps(strategy, model, global_batch_size: int):
    """Return ``(train_step, eval_step)``: one synchronous step of every worker, as ``tf.function``\\ s.

    ``train_step(batch)`` runs the model on each worker's part of the global
    batch and scales the loss by ``1 / global_batch_size``
    (``tf.nn.compute_average_loss``), so that the sum of the workers'
    gradients, which the optimizer forms with an all-reduce, is the gradient
    of the mean loss over the global batch; every copy of the model then
    applies the same update. ``eval_step(batch)`` only runs the model. Both
    return ``[loss sum, correct predictions, samples]`` summed over all workers.
    """
    def totals(y, probabilities):
        y = tf.cast(tf.reshape(y, (-1, 1)), tf.float32)
        losses = keras.losses.binary_crossentropy(y, probabilities)
        correct = tf.cast(tf.equal(tf.cast(probabilities > 0.5, tf.float32), y), tf.float32)
        count = tf.cast(tf.shape(y)[0], tf.float32)
        return losses, tf.stack([tf.reduce_sum(losses), tf.reduce_sum(correct), count])

    def replica_train(x, y):
        with tf.GradientTape() as tape:
            losses, sums = totals(y, model(x, training=True))
            loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch_size)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return sums

    def replica_eval(x, y):
        return totals(y, model(x, training=False))[1]

    @tf.function
    def train_step(batch):
        return strategy.reduce("SUM", strategy.run(replica_train, args=batch), axis=None)

    @tf.function
    def eval_step(batch):
        return strategy.reduce("SUM", strategy.run(replica_eval, args=batch), axis=None)

    return train_step, eval_step


def train_worker(config: TrainConfig, output_dir: str | os.PathLike) -> dict:
    """Train as one member of the cluster in ``TF_CONFIG``; return (and write) this worker's report.

    Each worker reads the training shards through
    ``strategy.distribute_datasets_from_function``: its input pipeline keeps
    every ``num_workers``-th shard file, starting at its own index (an
    explicit file shard), and batches ``global_batch_size / num_workers``
    records. Validation shards are split the same way. The loop is written
    out with ``strategy.run`` (:func:`make_steps`) rather than ``model.fit``,
    which fails under ``MultiWorkerMirroredStrategy`` with more than one
    worker in Keras 3 (keras-team/keras#20585; ``config.loop = "fit"`` shows
    it). The chief saves the model after every epoch to ``<output>/model.keras``.

    Returns:
        The report written to ``<output>/worker-<index>.json``: task, cluster, batch sizes, steps,
        history (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` per epoch), training seconds
        per epoch, ms per step (:func:`utils.callbacks.ms_per_step`), and the RSS timeline.
    """
    cluster = json.loads(os.environ[TF_CONFIG])
    index = cluster["task"]["index"]
    is_chief = index == 0
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING))
    num_workers = strategy.num_replicas_in_sync
    if config.global_batch_size % num_workers:
        raise ValueError(f"global_batch_size {config.global_batch_size} is not divisible by {num_workers} workers")
    keras.utils.set_random_seed(config.seed)
    train = shards.read_manifest(config.shard_dir, config.train_name)
    val = shards.read_manifest(config.shard_dir, config.val_name)

    def distributed(manifest: shards.ShardManifest, training: bool):
        """This worker's share of ``manifest``'s shards, as the strategy's distributed dataset."""
        def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
            return shards.make_dataset(
                manifest.paths(config.shard_dir), manifest.num_features,
                context.get_per_replica_batch_size(config.global_batch_size), shuffle=training,
                seed=config.seed, shuffle_buffer=config.shuffle_buffer, repeat=training, sparse=config.sparse,
                shard=(context.num_input_pipelines, context.input_pipeline_id))
        return strategy.distribute_datasets_from_function(make)

    steps_per_epoch = train.num_rows // config.global_batch_size
    with strategy.scope():
        model = models.build_mlp(train.num_features, 2, units=config.units, dropout_rate=config.dropout_rate,
                                 learning_rate=config.learning_rate, sparse_input=config.sparse)
    say = f"{LOG_PREFIX}worker {index}]"
    print(f"{say} {num_workers} worker(s), cluster {cluster['cluster']['worker']}; global batch "
          f"{config.global_batch_size} = {config.global_batch_size // num_workers} per worker; "
          f"{steps_per_epoch} steps per epoch", flush=True)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    step_seconds: list[list[float]] = []
    with MemoryMonitor(interval=0.1) as monitor:
        if config.loop == "fit":
            model.fit(distributed(train, True), steps_per_epoch=steps_per_epoch, epochs=config.epochs,
                      shuffle=False, verbose=2)
        train_step, eval_step = make_steps(strategy, model, config.global_batch_size)
        batches = iter(distributed(train, True))
        val_batches = distributed(val, False)
        for epoch in range(config.epochs):
            totals = np.zeros(3)
            step_seconds.append([])
            for _ in range(steps_per_epoch):
                start = time.perf_counter()
                totals += train_step(next(batches)).numpy()
                step_seconds[-1].append(time.perf_counter() - start)
            val_totals = sum(eval_step(batch).numpy() for batch in val_batches)
            for prefix, (loss_sum, correct, count) in (("", totals), ("val_", val_totals)):
                history[f"{prefix}loss"].append(float(loss_sum / count))
                history[f"{prefix}accuracy"].append(float(correct / count))
            if is_chief:
                with atomic_write(output_dir / "model.keras") as tmp:
                    model.save(tmp)
            monitor.mark(f"epoch {epoch + 1}")
            print(f"{say} epoch {epoch + 1}/{config.epochs}: {sum(step_seconds[-1]):.1f} s training; "
                  + ", ".join(f"{k} {v[-1]:.4f}" for k, v in history.items())
                  + ("; model saved" if is_chief else ""), flush=True)
    report = {
        "index": index, "is_chief": is_chief, "num_workers": num_workers, "pid": os.getpid(),
        "cluster": cluster["cluster"]["worker"], "global_batch_size": config.global_batch_size,
        "per_worker_batch_size": config.global_batch_size // num_workers, "steps_per_epoch": steps_per_epoch,
        "history": history,
        "train_seconds_per_epoch": [float(sum(seconds)) for seconds in step_seconds],
        "ms_per_step": ms_per_step([sum(seconds) for seconds in step_seconds], steps_per_epoch),
        "memory": {"times": monitor.timeline.times, "rss": monitor.timeline.rss, "marks": monitor.timeline.marks},
    }
    write_json(output_dir / f"worker-{index}.json", report)
    print(f"{say} done", flush=True)
    return report


def serve_data_service(dispatcher_port: int, worker_port: int) -> None:
    """Run a ``tf.data`` service dispatcher and one worker on ``127.0.0.1`` until the process is stopped."""
    service = tf.data.experimental.service
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=dispatcher_port))
    worker = service.WorkerServer(service.WorkerConfig(
        dispatcher_address=f"{LOCALHOST}:{dispatcher_port}", worker_address=f"{LOCALHOST}:{worker_port}",
        port=worker_port))
    print(f"{LOG_PREFIX}data-service] dispatcher {dispatcher.target}, worker {LOCALHOST}:{worker_port}", flush=True)
    worker.join()


def main(argv: Sequence[str] | None = None) -> None:
    """Command line of a worker process: ``train`` or ``serve``."""
    parser = argparse.ArgumentParser(prog="python -m utils.multi_worker", description=__doc__.splitlines()[0])
    parser.add_argument("--parent-pid", type=int, help="exit when this process is no longer the parent")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train as one worker of the cluster in $TF_CONFIG")
    train.add_argument("--config", required=True, help="TrainConfig JSON file")
    train.add_argument("--output", required=True, help="folder for reports and the chief's model")
    serve = commands.add_parser("serve", help="run a tf.data service dispatcher and one worker")
    serve.add_argument("--dispatcher-port", type=int, required=True)
    serve.add_argument("--worker-port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        watch_parent(args.parent_pid)
    if args.command == "train":
        if TF_CONFIG not in os.environ:
            parser.error(f"${TF_CONFIG} is not set: every worker needs the cluster and its own index")
        train_worker(TrainConfig.load(args.config), args.output)
    else:
        serve_data_service(args.dispatcher_port, args.worker_port)


if __name__ == "__main__":
    main()
