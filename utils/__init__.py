"""Shared code of the series: every notebook imports from here, nothing is copied between them."""
