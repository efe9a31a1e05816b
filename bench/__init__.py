"""Benchmarks of the series (run as scripts; see each module\x27s docstring)."""
