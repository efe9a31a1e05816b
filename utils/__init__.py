"""The shared code of the series' notebooks; the README's module map says what lives where."""

from pathlib import Path

#: The repository's root folder (``data/``, ``results/``, ``notebooks/`` are under it).
REPO_ROOT = Path(__file__).resolve().parent.parent
