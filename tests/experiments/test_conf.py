"""Every config group option composes (Hydra compose API) and instantiates; bad configs fail early.

No training here (see test_train.py): composition, validation and construction only.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

import recsim_env
from experiments.run.config import (
    ConfigError,
    EnvConfig,
    ProtocolConfig,
    TopLevelConfig,
    explain_unknown_override,
    instantiate_checked,
    validate,
)
from experiments.run.job import build_sinks, run
from experiments.run.sinks import RunContext

CONF = Path(__file__).resolve().parents[2] / "conf"

AGENTS = {
    "dqn",
    "adaptive_dqn",
    "dqn_pretrained",
    "pqn",
    "frozen",
    "sb3_dqn",
    "sb3_ppo",
    "sb3_a2c",
    "sb3_qrdqn",
    "random",
    "popularity",
    "greedy",
    "epsilon_greedy",
    "linucb",
    "thompson",
    "swucb",
    "ducb",
    "oracle",
    "oracle_longterm",
    "longterm_rule",
}
# agents that need returning users (info["longterm_*"], observed item quality signals)
LONGTERM_AGENTS = {"oracle_longterm", "longterm_rule"}
ENVS = {"drifting", "stationary", "abrupt", "seasonal", "cold_start", "long_term", "movielens"}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


# ---------------------------------------------------------------------------------------- groups
def test_group_options_are_the_public_interface(compose_cfg):
    assert set(options("agent")) == AGENTS
    assert set(options("env")) == ENVS
    assert set(options("logger")) == {"csv", "wandb", "none"}
    assert {"default", "tiny"} <= set(options("protocol"))
    assert "quickstart" in options("experiment")
    assert "gamma_eps_lr" in options("sweep")
    # one env option per registered id, and every registered id has an option
    ids = {compose_cfg(f"env={name}").env.id for name in ENVS}
    assert ids == set(recsim_env.ENV_IDS)


def test_defaults_list_and_top_level_keys(compose_cfg):
    cfg = compose_cfg()
    assert set(cfg) == {
        "env",
        "agent",
        "logger",
        "protocol",
        "seed",
        "torch_threads",
        "resume",
        "optimize_metric",
        "progress",
        "trust_checkpoints",
    }
    assert cfg.torch_threads == 1 and cfg.resume is False and cfg.trust_checkpoints is False
    typed = validate(cfg)
    assert typed.protocol.total_steps == cfg.protocol.total_steps


@pytest.mark.parametrize("name", sorted(ENVS))
def test_env_options_build_the_registered_env(name, compose_cfg):
    cfg = compose_cfg(f"env={name}", "env.num_envs=3")
    env_cfg = validate(cfg).env
    env = gymnasium.make_vec(env_cfg.id, num_envs=env_cfg.num_envs, **env_cfg.make_kwargs())
    obs, info = env.reset(seed=0)
    assert obs.shape == (3, env.single_observation_space.shape[0])
    assert "expected_reward" in info
    env.close()


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_agent_options_instantiate_and_act(name, compose_cfg, make_env):
    cfg = compose_cfg(f"agent={name}", "seed=7")
    validate(cfg)
    assert cfg.agent.seed == 7  # seed interpolated from the top level
    env = make_env(env_id="recsim_env/LongTerm-v0") if name in LONGTERM_AGENTS else make_env()
    obs, info = env.reset(seed=0)
    agent = instantiate_checked(cfg.agent, "agent", env=env)
    actions = np.asarray(agent.act(obs, explore=False, info=info))
    assert actions.shape == (2,)
    assert env.single_action_space.contains(int(actions[0]))
    env.close()


def test_uniform_hyperparameter_names(compose_cfg):
    """gamma / lr / seed mean the same thing everywhere; our DQN and SB3's share exploration keys."""
    for name in ("dqn", "sb3_dqn", "sb3_qrdqn", "sb3_ppo", "sb3_a2c"):
        agent = compose_cfg(f"agent={name}").agent
        assert {"gamma", "lr", "seed", "torch_threads"} <= set(agent), name
    for name in ("dqn", "sb3_dqn", "sb3_qrdqn"):
        agent = compose_cfg(f"agent={name}").agent
        assert {"epsilon_start", "epsilon_end", "exploration_fraction"} <= set(agent), name


@pytest.mark.parametrize("name", ["csv", "none", "wandb"])
def test_logger_options_build_their_sinks(name, tmp_path, monkeypatch, compose_cfg):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cfg = compose_cfg(f"logger={name}")
    validate(cfg)
    sinks = build_sinks(cfg, RunContext(run_dir=tmp_path, config={}, run_id="t", name="t"))
    kinds = {type(s).__name__ for s in sinks}
    if name == "none":
        assert sinks == []
    else:  # the CSV is the source of truth: always there when logging
        assert "CsvSink" in kinds
    for sink in sinks:
        sink.write(1, {"online/reward": 0.5})
        sink.write_summary({"online/reward": 0.5})
        sink.close()
    if name != "none":
        assert (tmp_path / "metrics.csv").read_text().splitlines()[-1] == "1,online/reward,0.5"


@pytest.mark.parametrize("name", options("protocol"))
def test_protocol_options_validate(name, compose_cfg):
    cfg = compose_cfg(f"protocol={name}")
    protocol = validate(cfg).protocol
    assert isinstance(protocol, ProtocolConfig)
    assert protocol.log_every <= protocol.total_steps


@pytest.mark.parametrize("name", options("experiment"))
def test_experiment_options_compose_every_job(name, compose_cfg):
    """Each named study is a multirun whose jobs compose and validate (every swept value is
    tried; the full grid when it is small)."""
    cfg = compose_cfg(f"experiment={name}", hydra=True)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    params = dict(cfg.hydra.sweeper.params)
    assert params, "a named study sweeps something"
    grid = [[f"{k}={v}" for v in str(vals).split(",")] for k, vals in params.items()]
    jobs = list(itertools.product(*grid))
    if len(jobs) > 20:  # each value once, the other keys at their first value
        jobs = [
            tuple(values[0] if j != i else value for j, values in enumerate(grid))
            for i, values in enumerate(grid)
            for value in values
        ]
    for job in jobs:
        validate(compose_cfg(f"experiment={name}", *job))


def test_quickstart_is_dqn_sb3_dqn_and_two_baselines_in_parallel(compose_cfg):
    cfg = compose_cfg("experiment=quickstart", hydra=True)
    agents = str(cfg.hydra.sweeper.params.agent).split(",")
    assert agents[:2] == ["dqn", "sb3_dqn"] and len(agents) == 4
    assert cfg.env.id == "recsim_env/DriftingUsers-v0"
    assert "joblib" in cfg.hydra.launcher._target_ and cfg.hydra.launcher.n_jobs == 2


def test_gamma_eps_lr_sweep_instantiates_for_both_dqns(compose_cfg, make_env):
    cfg = compose_cfg("sweep=gamma_eps_lr", hydra=True)
    params = {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}
    assert params["agent"] == ["dqn", "sb3_dqn"]
    env = make_env()
    for agent in params["agent"]:
        # extreme corners of the grid, on each agent: the uniform names reach the constructor
        for gamma, frac, lr in itertools.product(
            params["agent.gamma"][::2],
            params["agent.exploration_fraction"],
            params["agent.lr"][:1],
        ):
            job = compose_cfg(
                f"agent={agent}",
                f"agent.gamma={gamma}",
                f"agent.exploration_fraction={frac}",
                f"agent.lr={lr}",
            )
            built = instantiate_checked(job.agent, "agent", env=env)
            assert built.hyperparameters()["gamma"] == float(gamma)
            assert built.hyperparameters()["lr"] == float(lr)


@pytest.mark.parametrize("name", options("local"))
def test_local_options_compose(name, compose_cfg):
    validate(compose_cfg(f"local={name}"))


# ---------------------------------------------------------------------------------------- bad configs
def test_unknown_group_option_lists_the_available_ones(compose_cfg):
    with pytest.raises(MissingConfigException) as err:
        compose_cfg("agent=dqnn")
    message = str(err.value)
    assert "agent/dqnn" in message
    for name in ("dqn", "linucb", "sb3_ppo"):
        assert f"\t{name}\n" in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("seeed=3", ["'seeed'", "did you mean 'seed'", "torch_threads"]),
        ("agent.lrr=0.1", ["'agent.lrr'", "did you mean 'agent.lr'", "epsilon_start"]),
        ("protocol.totl_steps=5", ["did you mean 'protocol.total_steps'", "eval_every"]),
        ("env.kwargs.rewrd=click", ["did you mean 'env.kwargs.reward'"]),
    ],
)
def test_misspelled_key_names_the_key_and_the_allowed_ones(override, expected):
    message = explain_unknown_override(CONF, "config", [override])
    assert message is not None
    for part in expected:
        assert part in message
    assert explain_unknown_override(CONF, "config", ["seed=3", "agent=linucb"]) is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["protocol.total_steps=-5"], ["protocol.total_steps=-5", ">= 1"]),
        (["protocol.eval_episodes=0"], ["protocol.eval_episodes=0", ">= 1"]),
        (["torch_threads=0"], ["torch_threads=0", ">= 1"]),
        (["seed=abc"], ["seed='abc'", "an integer"]),
        (["optimize_metric=eval/retrun"], ["optimize_metric='eval/retrun'", "eval/return"]),
        (["env.num_envs=0"], ["env.num_envs=0"]),
        (["env.id=recsim_env/Nope-v0"], ["env.id", "recsim_env/DriftingUsers-v0"]),
        (["+protocol.totl_steps=5"], ["protocol.totl_steps", "did you mean 'total_steps'"]),
        (["+extra=1"], ["'extra'", "allowed keys"]),
        (["protocol.final_eval=maybe"], ["protocol.final_eval='maybe'", "true or false"]),
        (["resume=/no/such/run/dir"], ["resume='/no/such/run/dir'", "run directory"]),
    ],
)
def test_invalid_values_are_rejected_with_key_value_and_allowed(overrides, expected, compose_cfg):
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(*overrides))
    for part in expected:
        assert part in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["agent=linucb", "+agent.alpa=2"], ["agent.alpa", "did you mean 'alpha'", "reg"]),
        (["agent=linucb", "agent.alpha=-1"], ["agents.baselines.LinUCB", "alpha", "-1"]),
        (["agent=dqn", "agent.gamma=1.5"], ["gamma", "1.5"]),
        (["agent=sb3_dqn", "+agent.lrr=1"], ["lrr", "allowed keys"]),
        (["agent._target_=agents.nope.Agent"], ["agent._target_", "agents.nope"]),
    ],
)
def test_agent_constructor_errors_name_the_key(overrides, expected, tmp_path, compose_cfg):
    cfg = compose_cfg(*overrides, "protocol=tiny")
    with pytest.raises(ConfigError) as err:
        run(cfg, run_dir=tmp_path, multirun=False)
    for part in expected:
        assert part in str(err.value)
    # failed before training: a record of the failure, no metrics, no checkpoint
    assert not (tmp_path / "checkpoints").exists()
    assert not (tmp_path / "metrics.csv").exists()
    assert "ConfigError" in (tmp_path / "error.txt").read_text()
    assert '"status": "failed"' in (tmp_path / "summary.json").read_text()


def test_env_kwarg_errors_name_the_key(tmp_path, compose_cfg):
    cfg = compose_cfg("env.kwargs.reward=clicks", "protocol=tiny")
    with pytest.raises(ConfigError) as err:
        run(cfg, run_dir=tmp_path, multirun=False)
    assert "reward='clicks'" in str(err.value) and "engagement" in str(err.value)


def test_env_kwargs_null_means_simulator_default(compose_cfg):
    env_cfg = EnvConfig(
        id="recsim_env/Stationary-v0",
        num_envs=2,
        kwargs={"reward": None, "num_candidates": 7},
        autoreset_mode="same_step",
    )
    assert env_cfg.make_kwargs() == {"num_candidates": 7}
    cfg = compose_cfg()
    assert all(v is None for v in OmegaConf.to_container(cfg.env.kwargs).values())


def test_the_yaml_is_the_one_source_of_the_runner_defaults(compose_cfg):
    """The typed sections check values but hold no defaults that could contradict conf/."""
    for section in (TopLevelConfig, EnvConfig, ProtocolConfig):
        for field in dataclasses.fields(section):
            assert field.default is dataclasses.MISSING, (section.__name__, field.name)
            assert field.default_factory is dataclasses.MISSING, (section.__name__, field.name)
    cfg = compose_cfg()
    protocol = validate(cfg).protocol
    settings = OmegaConf.to_container(cfg.protocol, resolve=True)
    assert isinstance(settings, dict)
    settings.pop("parts")  # built by experiments/run/parts.py, not a setting
    assert dataclasses.asdict(protocol) == settings
    with pytest.raises(ConfigError, match=r"protocol\.ndcg_k"):
        validate(compose_cfg("~protocol.ndcg_k"))


def test_tune_spaces_are_no_recsim_train_group():
    """recsim-tune's search spaces live beside it, not in conf/ (where recsim-train --help would
    offer them as a config group)."""
    from experiments.tune.space import SPACE_DIR

    assert not (CONF / "tune").exists()
    assert {"dqn", "pqn", "linucb"} <= {p.stem for p in SPACE_DIR.glob("*.yaml")}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("protocol.parts.online._target_=experiments.run.steps.Nope", "protocol.parts.online"),
        ("protocol.parts.online=3", "protocol.parts.online"),
        ("+protocol.parts.mine._target_=collections.OrderedDict", "ProtocolCallback"),
        ("+protocol.parts.checkpoint._target_=experiments.run.steps.Evaluation", "checkpoint"),
    ],
)
def test_a_bad_protocol_part_is_refused_before_training(override, expected, tmp_path, tiny_cfg):
    """Parts come from conf/protocol/parts/ (the default set); a mistake names its key."""
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        run(tiny_cfg("agent=random", override), run_dir=tmp_path, multirun=False)
    assert not (tmp_path / "checkpoints").exists()
