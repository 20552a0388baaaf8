"""Benchmarks: scripts that print speed ratios measured side by side in one run (`make bench`).

Run from the repository root as modules, e.g. `python -m benchmarks.bench_model --models lite0 quick`.
"""
