"""Simulator tests run with the core's NaN/inf guard on, and without real data.

``RECSIM_CHECK_FINITE=1`` makes every ``reset``/``step`` assert that observations, rewards and the
float arrays of ``info`` are finite (off by default: it adds 10–15 % to a B = 4096 step).
Set here, at collection, so that every env these tests build has it (pytest's ini options cannot
set environment variables by themselves).

``RECSIM_DATA_DIR`` points, for every test here, at a temporary data home that holds a small
synthetic ``calibrations/movielens-100k/`` bundle (:func:`synthetic_movielens`): so the tests that
cover every registered id cover ``recsim_env/MovieLens-v0`` without the real data (which may not be
on the machine and may not be redistributed); tests of the real calibration are marked slow.
"""

import os
from pathlib import Path

import pytest

from recsim_env.grounding import calibration_dir, clear_calibration_cache, synthetic_calibration

os.environ["RECSIM_CHECK_FINITE"] = "1"
_USER_DATA_DIR = os.environ.get("RECSIM_DATA_DIR")  # before the tests point it elsewhere

SYNTHETIC_MOVIELENS_PARAMS = {
    "interest_weight": 3.0,
    "appeal_weight": 0.8,
    "click_threshold": 1.2,
    "user_noise": 0.2,
    "return_prob_min": 0.6,
    "return_prob_max": 0.95,
    "gap_mean_min": 5.0,
    "gap_mean_max": 40.0,
    "lifetime_ticks": 300,
}


def synthetic_movielens():
    """The stand-in for the MovieLens-100K calibration: 200 items (the per-id tests make envs with
    ``num_items=200``), 20 of them born after the clock starts, 60 users, 4 trajectory windows."""
    return synthetic_calibration(
        num_items=200,
        num_topics=8,
        num_users=60,
        num_windows=4,
        window_ticks=100,
        future_items=20,
        seed=18,
        name="movielens-100k",
        params=SYNTHETIC_MOVIELENS_PARAMS,
    )


@pytest.fixture(scope="session", autouse=True)
def synthetic_data_home(tmp_path_factory) -> Path:
    """A data home with the synthetic ``movielens-100k`` calibration, as ``RECSIM_DATA_DIR``."""
    home = tmp_path_factory.mktemp("recsim-data")
    before = os.environ.get("RECSIM_DATA_DIR")
    os.environ["RECSIM_DATA_DIR"] = str(home)
    synthetic_movielens().save(calibration_dir("movielens-100k"))
    clear_calibration_cache()
    yield home
    clear_calibration_cache()
    if before is None:
        os.environ.pop("RECSIM_DATA_DIR", None)
    else:
        os.environ["RECSIM_DATA_DIR"] = before


@pytest.fixture
def user_data_home() -> Path:
    """The data home the tests would use without the synthetic one (``$RECSIM_DATA_DIR`` as the
    session started, else the XDG default): for the slow tests on the real data."""
    if _USER_DATA_DIR:
        return Path(_USER_DATA_DIR).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "recsim-env"
