"""Measurement scripts: run each as `python -m benchmarks.NAME` from the repository root; their latest
output is in benchmarks/RESULTS.md with the machine it ran on."""
