"""Each default is defined once, in Python (issue 21): an agent or env built in Python
(``Class(env)``, ``gymnasium.make_vec(id)``) and the same option composed by Hydra (``agent=NAME``,
``env=NAME``) resolve to the same values; the YAML under ``conf/agent`` and ``conf/env`` holds presets
only; ``recsim-train --cfg job`` still shows every value a user can set."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import gymnasium
import pytest
import yaml
from hydra.utils import get_class
from omegaconf import OmegaConf

import recsim_env
from agents.catalog import AGENTS, agent_defaults
from experiments.integrations.hydra_configs import NUM_ENVS
from experiments.run.config import instantiate_checked

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
WIRING = {"seed", "torch_threads"}  # tied to the top-level keys of conf/config.yaml
LONGTERM = {"oracle_longterm", "longterm_rule"}
# keep the warm start's logging and pre-training tiny (the same both ways)
SMALL = {"dqn_pretrained": {"behaviour_steps": 64, "pretrain_steps": 2}}


def yaml_keys(path: Path) -> set[str]:
    return set(yaml.safe_load(path.read_text()) or {}) - {"defaults"}


def test_every_agent_option_is_in_the_catalog():
    assert {p.stem for p in (CONF / "agent").glob("*.yaml")} == set(AGENTS)


@pytest.mark.parametrize("path", sorted((CONF / "agent").glob("*.yaml")), ids=lambda p: p.stem)
def test_agent_yaml_holds_no_default(path):
    """Only the wiring (seed and threads from the top level, Hydra's own keys) is written in the
    YAML; every hyperparameter comes from the Python config through ``schema/agent/NAME``."""
    assert yaml_keys(path) <= WIRING | {"_recursive_"}, path.name
    data = yaml.safe_load(path.read_text())
    assert f"/schema/agent/{path.stem}@_here_" in data["defaults"]
    for key in WIRING & set(data):
        assert data[key] == "${" + key + "}"


@pytest.mark.parametrize("path", sorted((CONF / "env").glob("*.yaml")), ids=lambda p: p.stem)
def test_env_yaml_is_a_preset_of_the_one_schema(path):
    data = yaml.safe_load(path.read_text())
    assert data["defaults"] == ["/schema/env/recsim@_here_", "_self_"]
    # a new env option is its id, and only the kwargs its env adds to the simulator's (all null)
    assert set(data) <= {"defaults", "id", "kwargs"}
    sim_fields = {f.name for f in dataclasses.fields(recsim_env.SimConfig)}
    own = data.get("kwargs") or {}
    assert not sim_fields & set(own) and all(v is None for v in own.values())


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_agent_built_in_python_and_through_hydra_resolve_alike(name, compose_cfg, make_env):
    extra = SMALL.get(name, {})
    # `~agent/tuned`: the defaults, not the per-env preset of the default env (conf/agent/tuned/)
    cfg = compose_cfg(
        f"agent={name}", "~agent/tuned", *(f"agent.{k}={v}" for k, v in extra.items())
    )
    composed = OmegaConf.to_container(cfg.agent, resolve=True)
    target = composed.pop("_target_")
    assert target == AGENTS[name].target
    # the composed values are exactly the Python defaults (nothing restated, nothing added)
    inner = composed.pop("inner", None)
    composed.pop("_recursive_", None)
    expected = {**agent_defaults(name), **extra}
    assert {k: v for k, v in composed.items() if k not in WIRING} == {
        k: v for k, v in expected.items() if k not in WIRING
    }
    env = make_env(env_id="recsim_env/LongTerm-v0") if name in LONGTERM else make_env()
    wiring = {k: composed[k] for k in WIRING if k in composed}
    via_hydra = instantiate_checked(cfg.agent, "agent", env=env)
    cls = get_class(target)
    if inner is not None:  # frozen: the same inner agent, built in Python
        inner_cls = get_class(inner.pop("_target_"))
        inner_agent = inner_cls(env, **{k: v for k, v in inner.items() if k in WIRING})
        via_python = cls(env, inner=inner_agent, **wiring, **extra)
        assert via_python.learn_steps == via_hydra.learn_steps
        assert via_python.inner.hyperparameters() == via_hydra.inner.hyperparameters()
        assert type(via_python.inner) is type(via_hydra.inner)
        return
    via_python = cls(env, **wiring, **extra)
    assert type(via_python) is type(via_hydra)
    assert via_python.hyperparameters() == via_hydra.hyperparameters()
    # every resolved hyperparameter can be set from the command line
    assert set(via_hydra.hyperparameters()) <= set(composed)


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "env").glob("*.yaml")))
def test_env_built_in_python_and_through_hydra_resolve_alike(name, compose_cfg):
    from experiments.run.config import validate

    env_cfg = validate(compose_cfg(f"env={name}")).env
    assert env_cfg.num_envs == NUM_ENVS
    via_hydra = gymnasium.make_vec(env_cfg.id, num_envs=env_cfg.num_envs, **env_cfg.make_kwargs())
    via_python = gymnasium.make_vec(env_cfg.id, num_envs=NUM_ENVS)
    try:
        config = via_hydra.unwrapped.config
        assert config.to_dict() == via_python.unwrapped.config.to_dict()
        # every simulator parameter can be set as env.kwargs.NAME
        assert set(env_cfg.kwargs) >= {f.name for f in dataclasses.fields(recsim_env.SimConfig)}
    finally:
        via_hydra.close()
        via_python.close()


def test_cfg_job_shows_every_value_a_user_can_set(subprocess_env):
    """``recsim-train --cfg job`` (a fresh process: the structured configs register themselves
    through the Hydra plugin) prints every hyperparameter of the agent with its Python default and
    every simulator parameter."""
    for name in ("adaptive_dqn", "sb3_dqn"):
        command = [sys.executable, "-m", "experiments.run.cli", f"agent={name}", "env=long_term"]
        command.append("~agent/tuned")  # the Python defaults, not sb3_dqn's long-term preset
        out = subprocess.run(
            [*command, "--cfg", "job"],
            cwd=ROOT,
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=240,
            check=True,
        )
        job = yaml.safe_load(out.stdout)
        shown = {k: v for k, v in job["agent"].items() if k not in WIRING | {"_target_"}}
        assert shown == {k: v for k, v in agent_defaults(name).items() if k not in WIRING}
        assert job["agent"]["seed"] == "${seed}"
        assert job["env"]["id"] == "recsim_env/LongTerm-v0" and job["env"]["num_envs"] == NUM_ENVS
        sim_fields = {f.name for f in dataclasses.fields(recsim_env.SimConfig)}
        assert set(job["env"]["kwargs"]) == sim_fields


def test_reading_the_defaults_imports_no_sb3():
    """The Hydra registration reads the SB3 adapters' defaults from their tables, not by importing
    SB3 (seconds at every Hydra start)."""
    code = (
        "import sys; from experiments.integrations.hydra_configs import register_configs; "
        "register_configs(); print(sorted(m for m in ('stable_baselines3', 'sb3_contrib') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
