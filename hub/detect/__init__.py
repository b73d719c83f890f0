"""Detectors: pure functions over domain values, unit-tested without a database (DESIGN.md §5)."""
