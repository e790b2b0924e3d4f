"""Fixtures shared by every test directory: composing the config, building envs, run dirs,
the environment of a subprocess that runs a console script.

``RECSIM_DATA_DIR`` points, for every test (and every subprocess a test starts), at a temporary
data home that holds a small synthetic ``calibrations/movielens-100k/`` bundle
(:func:`synthetic_movielens`): so the tests that cover every registered id and every ``env=``
option cover ``recsim_env/MovieLens-v0`` without the real data (which may not be on the machine and
may not be redistributed); tests of the real calibration are marked slow and use
:func:`user_data_home`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from recsim_env.grounding import calibration_dir, clear_calibration_cache, synthetic_calibration

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TINY = ("protocol=tiny", "progress=false")  # a run of a few seconds, no progress bar


def compose_config(*overrides: str, hydra: bool = False) -> DictConfig:
    """``conf/config.yaml`` composed with ``overrides`` (Hydra's compose API)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


@pytest.fixture(scope="session")
def compose_cfg() -> Callable[..., DictConfig]:
    """``compose_cfg(*overrides, hydra=False)``: the composed config."""
    return compose_config


@pytest.fixture(scope="session")
def tiny_cfg() -> Callable[..., DictConfig]:
    """``tiny_cfg(*overrides)``: the composed config of a tiny run (``protocol=tiny``)."""
    return lambda *overrides: compose_config(*TINY, *overrides)


@pytest.fixture
def make_env() -> Callable[..., Any]:
    """``make_env(num_envs=2, env_id="recsim_env/DriftingUsers-v0", **kwargs)``: a vector env,
    closed at the end of the test."""
    import recsim_env  # noqa: F401 — registers the ids

    made: list[Any] = []

    def factory(
        num_envs: int = 2, env_id: str = "recsim_env/DriftingUsers-v0", **kwargs: Any
    ) -> Any:
        env = gymnasium.make_vec(env_id, num_envs=num_envs, **kwargs)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A fresh (not yet created) run dir under the test's tmp dir."""
    return tmp_path / "run"


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """The environment of a console script run by a test: one thread, W&B off, this checkout
    importable."""
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


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
