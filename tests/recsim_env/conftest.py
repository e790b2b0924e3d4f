"""Simulator tests run with the core's NaN/inf guard on, and without real data.

``RECSIM_CHECK_FINITE=1`` makes every ``reset``/``step`` assert that observations, rewards and the
float arrays of ``info`` are finite (off by default: it adds 10–15 % to a B = 4096 step).
Set here, at collection, so that every env these tests build has it (pytest's ini options cannot
set environment variables by themselves).

``RECSIM_DATA_DIR`` points at a synthetic data home for every test (``tests/conftest.py``).
"""

import os

os.environ["RECSIM_CHECK_FINITE"] = "1"
