"""Set-up for every notebook: quiet TensorFlow logs, seeds, and what this run ran on."""

from __future__ import annotations

import inspect
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata

import psutil

from utils.memory import GB

#: Packages whose versions each notebook prints.
REPORTED_PACKAGES = ("tensorflow", "keras", "numpy", "scipy", "scikit-learn", "matplotlib", "psutil")


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ log lines below FATAL out of the output; call before TensorFlow is imported.

    Level 3 also hides the error-level ``failed call to cuInit`` line that
    TensorFlow prints on a machine without a GPU. Child processes inherit the
    setting through the environment.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and Keras (and TensorFlow where it is Keras' backend or already loaded) in one call.

    ``keras.utils.set_random_seed`` also seeds TensorFlow whenever it is
    *installed* (``if tf.available`` in ``keras/src/utils/rng_utils.py``), which
    imports it: on the JAX backend that costs seconds and hundreds of MB for
    nothing (chapter 11). Without TensorFlow loaded on another backend, this
    does the rest of what that function does: Python's and NumPy's seeds, the
    seed Keras' ``SeedGenerator`` and initializers draw from, and PyTorch's on
    its backend.

    Keras is imported here, not at the top, so that this module can be imported (and
    :func:`quiet_tensorflow` called) before TensorFlow loads.
    """
    import keras

    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    import random

    import numpy as np
    from keras.src.backend.common import global_state  # what set_random_seed sets, without its TensorFlow import

    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute("global_seed_generator", None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


def load_average() -> list[float] | None:
    """Return the 1-, 5- and 15-minute load averages, rounded (for results files), or ``None`` where the
    system has none (``os.getloadavg`` is POSIX-only)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_summary() -> str:
    """Return the machine in one line: system, processor, logical cores, RAM (for results files)."""
    return (f"{platform.system()} {platform.machine()}, {psutil.cpu_count(logical=True)} logical cores, "
            f"{psutil.virtual_memory().total / GB:.1f} GB RAM")


def package_versions(optional: Sequence[str] = ()) -> dict[str, str]:
    """Return Python's version and those of :data:`REPORTED_PACKAGES` (for results files).

    Args:
        optional: more distributions, reported where installed (e.g. a peer's package that has no wheel for
            every Python the series supports) and left out where not.
    """
    versions = {"python": sys.version.split()[0], **{name: metadata.version(name) for name in REPORTED_PACKAGES}}
    for name in optional:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def describe_machine() -> str:
    """Return a short report of the machine and package versions, for the top of a notebook."""
    memory = psutil.virtual_memory()
    lines = [
        f"Python {sys.version.split()[0]} on {platform.system()} {platform.machine()}",
        f"CPU cores: {psutil.cpu_count(logical=True)}, RAM: {memory.total / GB:.1f} GB total, "
        f"{memory.available / GB:.1f} GB available",
    ]
    lines += [f"{name} {version}" for name, version in package_versions().items() if name != "python"]
    return "\n".join(lines)


def show(*objects: object) -> None:
    """Print the whole source of each public function, class or method of the series: ``def`` line,
    docstring and body, exactly as it stands in ``utils/`` (the one source of truth a chapter shows).

    Raises:
        ValueError: a private name (leading underscore): chapters show public code only.
    """
    for obj in objects:
        if isinstance(obj, property):  # a property's source is its getter's, decorator included
            obj = obj.fget
        name = getattr(obj, "__qualname__", repr(obj))
        if any(part.startswith("_") and not part.endswith("__") for part in name.split(".")):
            raise ValueError(f"{name} is private: show public functions and classes only")
        print(inspect.getsource(obj))
