"""Files written whole, work run in a fresh process, and processes that are never left behind.

Three things every long experiment of the series needs, each written once:

* **Writing a file whole.** :func:`atomic_write` hands out a temporary path
  next to the target; whatever the caller writes there (JSON, ``np.savez``,
  ``model.save``, a TFRecord file) is flushed to disk and renamed onto the
  target only when the block succeeds. A rename within one folder is atomic
  on POSIX and Windows, so a reader, or a run restarted after a crash, finds
  the old file or the new one, never a half-written one: a process killed
  mid-write (``SIGKILL``, the OOM killer, a power cut: the data and the
  rename are flushed to disk) or a write that fails (``OSError(ENOSPC)``,
  disk full) leaves the old file untouched. :func:`staging_folder` does the
  same for a folder written whole.
  :func:`write_json` and :func:`write_text` are the common cases.
* **Running work in a fresh process.** :func:`run_fresh` calls a function in
  a new Python interpreter (``multiprocessing``'s ``"spawn"``) and returns what
  it returns. Nothing the parent allocated counts towards the child's memory,
  so a peak RSS measured there belongs to that work alone, and a child that
  dies (killed for memory, a segfault) is reported, not hung on.
* **Processes that belong together** (:class:`ProcessGroup`): training
  workers or a server started with ``python -m <module>``, each in its own
  process group with its log in a file, stopped (``SIGTERM``, then
  ``SIGKILL``) when the ``with`` block ends, when the group is collected, or
  at interpreter exit. :func:`watch_parent` lets a child end itself when its
  launcher disappears, :func:`kill_when_marked` kills a child for real at a
  moment it chose, and :func:`log_text` and :func:`error_message` read a
  child's log without TensorFlow's start-up noise.

Process groups and signals are POSIX (Linux, macOS; WSL2 on Windows).
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from utils import REPO_ROOT

# --------------------------------------------------------------------------------------------- files written whole


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries (POSIX), from the operating system's cache to the disk."""
    if path.is_dir():
        if os.name != "posix":  # Windows cannot open a folder to flush it
            return
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def commit(tmp: Path, path: Path) -> None:
    """Make the finished file ``tmp`` the file ``path`` in one atomic rename, flushed so it survives a power cut."""
    fsync_path(tmp)  # the data on disk before the name points at it
    os.replace(tmp, path)
    fsync_path(path.parent)  # and the rename itself


#: Name of a temporary file of :func:`atomic_write`: the target's name, the writer's process id, a random part.
PARTIAL_PATTERN = re.compile(r"\.(.+)\.partial-(\d+)-[0-9a-f]{8}(\..*)?")


def remove_stale_partials(folder: Path, name: str | None = None) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write` in ``folder`` whose writer no longer runs.

    Only a killed write leaves one behind (a failed one removes its own).
    With ``name``, only those of the target file ``name``. Returns what was removed.
    """
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.glob(f".{name or '*'}.partial-*")):
        match = PARTIAL_PATTERN.fullmatch(path.name)
        if match and path.is_file() and not psutil.pid_exists(int(match.group(2))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success, flush it to disk and rename it onto ``path``.

    The temporary name keeps ``path``'s suffix (``.keras``, ``.npz`` and
    ``.h5`` writers insist on theirs) and is unique to this call. If the block
    raises, the temporary file is removed and ``path`` is left as it was; the
    temporary files of earlier writes of ``path`` that were killed are
    removed first. The folder is created if missing.

    Example::

        with atomic_write("results/run.json") as tmp:
            tmp.write_text(json.dumps(payload))
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path.parent, path.name)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


#: Name of a staging folder: what it stages, the id of the process that made it, a random suffix.
STAGING_PATTERN = re.compile(r"\.([a-z]+)-(\d+)-.+")


def staging_folder(parent: Path, kind: str) -> Path:
    """Create and return an empty folder ``parent/.<kind>-<pid>-<random>`` for a folder being written.

    Write the whole result there, then rename it into place (a rename is
    atomic); a killed process leaves only the staging folder, which
    :func:`remove_stale_staging` recognises by the dead process id in its name.

    Args:
        parent: the folder that will receive the finished result.
        kind: lower-case letters saying what is staged (``"download"``, ``"extract"``, ``"cache"``).
    """
    if not kind.isalpha() or not kind.islower():
        raise ValueError(f"kind must be lower-case letters, got {kind!r}")
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{kind}-{os.getpid()}-", dir=parent))


def remove_stale_staging(folder: Path) -> list[Path]:
    """Remove the staging folders in ``folder`` whose process no longer runs; return what was removed.

    A write that was killed (not merely failed: a failure cleans up after
    itself) leaves its staging folder behind. The process id in the folder's
    name tells whether its owner still runs, so work in progress in another
    process is left alone.
    """
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.iterdir()):
        match = STAGING_PATTERN.fullmatch(path.name)
        if match and path.is_dir() and not psutil.pid_exists(int(match.group(2))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole (:func:`atomic_write`); return the path."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, payload: Any, indent: int | None = 1) -> Path:
    """Write ``payload`` as JSON to ``path`` whole (:func:`atomic_write`); return the path."""
    return write_text(path, json.dumps(payload, indent=indent) + "\n")


# --------------------------------------------------------------------------------------------- a fresh process


class ChildProcessError(RuntimeError):
    """Work run in a fresh process failed, died or ran out of time; the message says which and why."""


def _call_in_child(connection, module: str, name: str, args: tuple, kwargs: dict) -> None:
    """Child side of :func:`run_fresh`: import the function, call it, send back its result or its traceback."""
    try:
        function = getattr(importlib.import_module(module), name)
        connection.send(("ok", function(*args, **kwargs)))
    except BaseException:  # noqa: BLE001 - everything goes back to the parent
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


def run_fresh(function: Callable[..., Any], /, *args: Any, timeout: float | None = None, daemon: bool = True,
              **kwargs: Any) -> Any:
    """Call ``function(*args, **kwargs)`` in a new Python interpreter and return its result.

    The child is started with ``multiprocessing``'s ``"spawn"`` method on every
    platform: it shares no memory with this process, imports only the
    function's module (by name, so it must be a module-level function of an
    importable module or of the script being run) and inherits this
    process's environment variables. Arguments and result must be picklable.
    The child is a daemon (it ends with this process) unless ``daemon=False``,
    which work that starts processes of its own needs (a daemon may not).

    Raises:
        ChildProcessError: the function raised (the message holds the child's
            traceback), the child died without answering (killed, out of
            memory; the message gives its exit code), or ``timeout`` seconds
            passed (the child is killed).
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_call_in_child, daemon=daemon,
                            args=(sender, function.__module__, function.__qualname__, args, kwargs))
    child.start()
    sender.close()
    label = f"{function.__module__}.{function.__qualname__} in process {child.pid}"
    try:
        if not receiver.poll(timeout):
            raise ChildProcessError(f"{label} did not finish within {timeout} s; killed it")
        status, payload = receiver.recv()
    except EOFError:
        child.join()
        raise ChildProcessError(f"{label} died without a result (exit code {child.exitcode})") from None
    finally:
        receiver.close()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
    if status == "error":
        raise ChildProcessError(f"{label} raised:\n{payload}")
    return payload


# --------------------------------------------------------------------------------------------- groups of processes

#: TensorFlow's C++ log lines (``I0000 ...``, ``E0000 ...``) and absl's note about them, printed while it loads.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} |^WARNING: All log messages before absl::InitializeLog\(\)")


def stop_processes(processes: Sequence[subprocess.Popen], grace: float = 5.0) -> None:
    """Stop every process still running: SIGTERM to its process group, SIGKILL after ``grace`` seconds.

    Each process is expected to lead its own process group (``start_new_session=True``),
    so anything it started goes too. Processes that already ended are only reaped.
    """
    running = [p for p in processes if p.poll() is None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``process`` (or to the process alone if that fails)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass


class ProcessGroup:
    """Start ``python -m <module>`` processes that belong together, and never leave one behind.

    Use it as a context manager::

        with ProcessGroup(log_dir) as group:
            group.start("worker-0", "utils.multi_worker", ["train", ...])
            group.wait(timeout=600)

    Leaving the block stops every process still running (SIGTERM, then
    SIGKILL), also when the block raises. Processes are also stopped when the
    group is garbage-collected or the interpreter exits. Each child gets
    ``--parent-pid <this pid>`` as its first argument, so that it can end
    itself if this process disappears (:func:`watch_parent`).

    Args:
        log_dir: folder for one log file per process (``<name>.log``, stdout and stderr together).
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        self.log_dir = Path(log_dir)
        self.processes: dict[str, subprocess.Popen] = {}
        # The finalizer holds this list, not the group, so the group can still be collected; weakref.finalize
        # also runs it at interpreter exit.
        self._started: list[subprocess.Popen] = []
        weakref.finalize(self, stop_processes, self._started)

    def log(self, name: str) -> Path:
        """Return the log file of process ``name``."""
        return self.log_dir / f"{name}.log"

    def start(self, name: str, module: str, args: Sequence[str] = (),
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``python -m <module> --parent-pid <pid> <args>`` as process ``name``; return its ``Popen``.

        The process runs in the repository root with this environment plus
        ``env``, unbuffered output (so its log holds everything up to a kill),
        its own process group, and :meth:`log` ``(name)`` as stdout and stderr.

        Raises:
            ValueError: a process of that name was already started.
        """
        if name in self.processes:
            raise ValueError(f"a process named {name!r} was already started")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", module, "--parent-pid", str(os.getpid()), *args]
        with open(self.log(name), "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=full_env, cwd=REPO_ROOT, start_new_session=True)
        self.processes[name] = process
        self._started.append(process)
        return process

    def alive(self) -> list[str]:
        """Return the names of the processes still running."""
        return [name for name, process in self.processes.items() if process.poll() is None]

    def wait(self, timeout: float, poll: float = 0.2) -> dict[str, int]:
        """Wait until every process has ended; return their exit codes by name.

        As soon as one process exits with an error the others are stopped
        (workers of one job would otherwise wait for it forever).

        Raises:
            ChildProcessError: a process exited with a non-zero code (the message quotes the error in its log),
                or ``timeout`` seconds passed; all processes are stopped first.
        """
        deadline = time.monotonic() + timeout
        while True:
            codes = {name: p.poll() for name, p in self.processes.items()}
            failed = [name for name, code in codes.items() if code not in (None, 0)]
            if failed:
                self.stop()
                name = failed[0]
                raise ChildProcessError(f"{name} exited with code {codes[name]}; the others were stopped. "
                                        f"Its error: {error_message(self.log(name))}")
            if all(code == 0 for code in codes.values()):
                return codes
            if time.monotonic() > deadline:
                self.stop()
                raise ChildProcessError(f"processes still running after {timeout:.0f} s were stopped: "
                                        f"{[name for name, code in codes.items() if code is None]}")
            time.sleep(poll)

    def stop(self) -> None:
        """Stop every process of the group that is still running (see :func:`stop_processes`)."""
        stop_processes(self._started)

    def __enter__(self) -> ProcessGroup:
        """Return the group."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop every process still running."""
        self.stop()


def watch_parent(parent_pid: int, interval: float = 1.0) -> None:
    """End this process (exit status 3) as soon as ``parent_pid`` is no longer its parent.

    Starts a daemon thread. Without it, a worker whose launcher was killed
    would wait for its peers forever.
    """
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(3)

    if os.getppid() != parent_pid:
        os._exit(3)
    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def kill_when_marked(process: subprocess.Popen, marker: Path, timeout: float = 300.0) -> int:
    """Wait until ``process`` creates ``marker``, then SIGKILL it; return its exit status (``-9``).

    ``SIGKILL`` cannot be caught: no ``finally``, no ``atexit`` and no
    callback runs in the killed process, as when the OOM killer strikes.

    Raises:
        RuntimeError: the process ended before writing the marker.
        TimeoutError: no marker within ``timeout`` seconds (the process is killed anyway).
    """
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            raise RuntimeError(f"process {process.pid} ended with status {process.returncode} before {marker.name}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise TimeoutError(f"process {process.pid} wrote no {marker.name} within {timeout} s; killed it")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    return process.wait()


def log_text(path: str | os.PathLike) -> str:
    """Return a child's log without TensorFlow's start-up lines (:data:`TF_LOG_LINE`); '' if there is none."""
    path = Path(path)
    if not path.is_file():
        return ""
    return "\n".join(line for line in path.read_text(errors="replace").splitlines() if not TF_LOG_LINE.match(line))


def error_message(path: str | os.PathLike, width: int = 300) -> str:
    """Return the exception that ended the last Python traceback in a log, on one line ('' if none).

    Messages longer than ``width`` characters keep their beginning and end (a
    message can hold a whole tensor).
    """
    lines = log_text(path).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return ""
    block = lines[starts[-1] + 1:]
    # The stack frames are indented; the exception starts at the first line that is not.
    first = next((i for i, line in enumerate(block) if line and not line[0].isspace()), None)
    if first is None:
        return ""
    text = " ".join(part.strip() for part in block[first:] if part.strip())
    if len(text) <= width:
        return text
    half = (width - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"
