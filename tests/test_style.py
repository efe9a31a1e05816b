"""Lint: ``ruff check utils bench tests notebooks`` passes with the repository's configuration (pyproject.toml)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from utils import REPO_ROOT


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed")
def test_ruff_check_passes_on_code_and_notebooks() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "utils", "bench", "tests", "notebooks"],
                            cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
