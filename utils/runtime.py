"""Set-up for every notebook: quiet TensorFlow logs, seeds, and what this run ran on."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import psutil

from utils.memory import GB

#: Packages whose versions each notebook prints.
REPORTED_PACKAGES = ("tensorflow", "keras", "numpy", "scipy", "scikit-learn", "matplotlib", "psutil")


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ INFO and WARNING lines out of cell outputs; call before importing it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras in one call."""
    import keras

    keras.utils.set_random_seed(seed)


def describe_machine() -> str:
    """Return a short report of the machine and package versions, for the top of a notebook."""
    memory = psutil.virtual_memory()
    lines = [
        f"Python {sys.version.split()[0]} on {platform.system()} {platform.machine()}",
        f"CPU cores: {psutil.cpu_count(logical=True)}, RAM: {memory.total / GB:.1f} GB total, "
        f"{memory.available / GB:.1f} GB available",
    ]
    lines += [f"{name} {metadata.version(name)}" for name in REPORTED_PACKAGES]
    return "\n".join(lines)
