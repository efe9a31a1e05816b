"""`utils.runtime.show`: the one way a chapter prints the code it teaches, from the one source of truth."""

from __future__ import annotations

import inspect

import pytest

from utils import batching, callbacks
from utils.hashed_tfidf import HashedTfidf
from utils.runtime import show


def test_show_prints_the_whole_public_source(capsys: pytest.CaptureFixture[str]) -> None:
    show(batching.batch_generator, callbacks.GeneratorValidation)
    printed = capsys.readouterr().out
    assert printed.startswith("def batch_generator(")  # the def line, not only the docstring
    assert inspect.getsource(batching.batch_generator) in printed
    assert inspect.getsource(callbacks.GeneratorValidation) in printed


def test_show_prints_a_property_with_its_decorator(capsys: pytest.CaptureFixture[str]) -> None:
    show(HashedTfidf.idf)
    printed = capsys.readouterr().out
    assert printed.lstrip().startswith("@property") and "def idf(self)" in printed


def test_show_refuses_private_names() -> None:
    def _hidden() -> None:
        """A private helper: chapters must not print it."""

    with pytest.raises(ValueError, match="_hidden is private"):
        show(_hidden)


def test_package_versions_reports_optional_distributions_only_where_installed() -> None:
    from utils.runtime import REPORTED_PACKAGES, package_versions

    versions = package_versions(optional=("hypothesis", "no-such-distribution-here"))
    assert set(versions) == {"python", *REPORTED_PACKAGES, "hypothesis"}
    assert versions["hypothesis"].count(".") >= 1
