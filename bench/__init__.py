"""Benchmarks, run from the repository root as modules (`python -m
bench.pipeline`): each prints its figures and the ratio it is judged by."""
