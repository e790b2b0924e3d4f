"""Fixtures shared by every test directory: composing the config, building envs, run dirs,
the environment of a subprocess that runs a console script."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

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
