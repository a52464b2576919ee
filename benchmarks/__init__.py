"""The lamarr_col benchmark harness (``python -m benchmarks``); never part of the test run."""
