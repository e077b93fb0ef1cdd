"""Benchmarks run by hand against a local PostgreSQL (see each module's docstring)."""
