"""SB3's DQN, PPO, A2C and sb3-contrib's QR-DQN behind our Agent contract."""

from __future__ import annotations

import logging
import random

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env

import recsim_env  # noqa: F401  (registers the ids)
from agents.base import Agent, StepCallback, Transition
from agents.sb3 import SB3A2C, SB3DQN, SB3PPO, SB3QRDQN
from recsim_env.sb3_vec_env import RecSimVecEnv

ENV_ID = "recsim_env/DriftingUsers-v0"
B = 4

# tiny budgets: small nets and rollouts so that every algorithm trains and logs within ~1 s
TINY = {
    SB3DQN: dict(hidden_sizes=[32], learning_starts=40, buffer_size=2_000, log_interval=2),
    SB3QRDQN: dict(
        hidden_sizes=[32], learning_starts=40, buffer_size=2_000, log_interval=2, n_quantiles=8
    ),
    SB3PPO: dict(hidden_sizes=[32], n_steps=16, batch_size=32, n_epochs=2),
    SB3A2C: dict(hidden_sizes=[32], n_steps=5, log_interval=5),
}
ALGORITHMS = list(TINY)
VALUE_BASED = (SB3DQN, SB3QRDQN)
BUDGET = 800  # user-steps


class Recorder(StepCallback):
    """Keeps everything the runner's metric callback would see."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.agent = None
        self.transitions: list[Transition] = []
        self.logs: list[tuple[int, dict[str, float]]] = []
        self.ended = 0
        self.stop_after = stop_after

    def on_training_start(self, agent):
        self.agent = agent

    def on_step(self, transition: Transition) -> bool:
        self.transitions.append(transition)
        return self.stop_after is None or len(self.transitions) < self.stop_after

    def on_training_end(self):
        self.ended += 1

    def on_log(self, scalars, num_timesteps):
        self.logs.append((num_timesteps, dict(scalars)))

    def logged_keys(self) -> set[str]:
        return {key for _, scalars in self.logs for key in scalars}


def vector_env(env_id: str = ENV_ID, num_envs: int = B, **kwargs) -> gym.vector.VectorEnv:
    kwargs.setdefault("max_session_steps", 15)  # sessions end (and SB3 logs episodes) quickly
    return gym.make_vec(env_id, num_envs=num_envs, **kwargs)


def assert_transitions_consistent(recorder: Recorder, num_envs: int) -> None:
    ends = 0
    for t in recorder.transitions:
        assert t.obs.shape == t.next_obs.shape == t.final_obs.shape
        assert t.obs.shape[0] == num_envs
        assert t.actions.shape == (num_envs,) and t.rewards.shape == (num_envs,)
        for key in ("clicked", "engagement", "regret", "drift_event", "click_prob"):
            assert t.info[key].shape[0] == num_envs, key
        # SB3 must not have modified the rewards we reported (PPO bootstraps truncations in place)
        np.testing.assert_allclose(t.rewards, t.info["engagement"], rtol=1e-6)
        assert np.all(t.info["regret"] >= -1e-6)
        done = t.terminated | t.truncated
        assert not np.any(t.terminated & t.truncated)
        for i in np.flatnonzero(done):
            ends += 1
            np.testing.assert_array_equal(t.final_obs[i], t.info["final_obs"][i])
            assert not np.array_equal(t.final_obs[i], t.next_obs[i])
        for i in np.flatnonzero(~done):
            np.testing.assert_array_equal(t.final_obs[i], t.next_obs[i])
    assert ends > 0


@pytest.mark.parametrize("cls", ALGORITHMS, ids=lambda c: c.__name__)
def test_trains_reports_metrics_saves_and_loads(cls, tmp_path):
    env = vector_env()
    agent = cls(env, seed=0, **TINY[cls])
    assert isinstance(agent, Agent)
    assert isinstance(agent.vec_env, RecSimVecEnv) and agent.vec_env.vector_env is env
    recorder = Recorder()
    assert agent.learn(BUDGET, callback=recorder) is agent

    # online metrics: one Transition per vector step, with the batched ground truth
    assert recorder.agent is agent and recorder.ended == 1
    assert agent.num_timesteps >= BUDGET
    assert len(recorder.transitions) == agent.num_timesteps // B
    assert [t.num_timesteps for t in recorder.transitions] == [
        B * (k + 1) for k in range(len(recorder.transitions))
    ]
    assert_transitions_consistent(recorder, B)
    assert "train/lr" in recorder.transitions[-1].metrics
    if cls in VALUE_BASED:
        assert 0.0 <= recorder.transitions[-1].metrics["train/epsilon"] <= 1.0

    # SB3's own scalars through the logger, under SB3's names and ours
    keys = recorder.logged_keys()
    expected = {"time/fps", "train/lr", "train/learning_rate", "rollout/ep_rew_mean"}
    if cls in VALUE_BASED:
        expected |= {"train/epsilon", "rollout/exploration_rate", "train/loss"}
    assert expected <= keys, expected - keys
    steps = [n for n, _ in recorder.logs]
    assert steps == sorted(steps) and steps[-1] == agent.num_timesteps
    for _, scalars in recorder.logs:
        if "train/learning_rate" in scalars:
            assert scalars["train/lr"] == scalars["train/learning_rate"]

    # SB3 zip at exactly the given path; the loaded agent acts identically
    obs, _ = vector_env(num_envs=16).reset(seed=5)
    path = tmp_path / "ckpt" / "agent.ckpt"
    agent.save(path)
    assert path.is_file() and not path.with_suffix(".ckpt.zip").exists()
    for loaded in (
        cls.load(path, trust_checkpoints=True),
        cls.load(path, env=vector_env(), trust_checkpoints=True),
    ):
        assert type(loaded) is cls
        assert loaded.hyperparameters() == agent.hyperparameters()
        np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))
    # candidate scores (for eval/ndcg@k) agree with the greedy action
    scores = agent.scores(obs)
    assert scores.shape == (16, 20) and np.all(np.isfinite(scores))
    np.testing.assert_array_equal(scores.argmax(axis=1), agent.act(obs))
    actions = loaded.act(obs, explore=True)
    assert actions.shape == (16,) and np.all((actions >= 0) & (actions < 20))
    loaded.learn(4 * B)  # continues the count (reset_num_timesteps=False)
    assert loaded.num_timesteps >= agent.num_timesteps + 4 * B
    with pytest.raises(RuntimeError, match="without an env"):
        cls.load(path, trust_checkpoints=True).learn(B)


@pytest.mark.parametrize("cls", ALGORITHMS, ids=lambda c: c.__name__)
def test_works_with_plain_sb3_make_vec_env(cls):
    venv = make_vec_env(ENV_ID, n_envs=2, seed=0)  # as a user would write it
    agent = cls(venv, seed=0, **TINY[cls])
    assert agent.vec_env is venv
    recorder = Recorder()
    agent.learn(BUDGET // 2, callback=recorder)
    assert len(recorder.transitions) == agent.num_timesteps // 2
    assert_transitions_consistent(recorder, 2)
    assert {"time/fps", "train/lr"} <= recorder.logged_keys()


def test_callback_returning_false_stops_sb3_learn():
    agent = SB3PPO(vector_env(), seed=0, **TINY[SB3PPO])
    recorder = Recorder(stop_after=7)
    agent.learn(10_000, callback=recorder)
    assert len(recorder.transitions) == 7 and agent.num_timesteps == 7 * B
    assert recorder.ended == 1


def test_instantiated_from_a_hydra_config():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {
            "_target_": "agents.sb3.SB3DQN",
            "lr": 1e-3,
            "hidden_sizes": [16, 16],
            "train_freq": [2, "step"],
            "seed": 3,
            "sb3_kwargs": {"policy_kwargs": {"normalize_images": False}, "tau": 0.5},
        }
    )
    agent = instantiate(cfg, env=vector_env())
    assert isinstance(agent, SB3DQN)
    assert agent.model.policy.net_arch == [16, 16]
    assert agent.model.train_freq.frequency == 2 and agent.model.tau == 0.5
    assert agent.model.lr_schedule(1.0) == pytest.approx(1e-3)
    assert agent.hyperparameters()["hidden_sizes"] == [16, 16]


@pytest.mark.parametrize(  # the NEXT_STEP run doubles a > 30 s test: make test-slow
    "autoreset_mode", ["same_step", pytest.param("next_step", marks=pytest.mark.slow)]
)
def test_sb3_dqn_beats_random_on_stationary_users(autoreset_mode):
    """SB3's own loop over RecSimVecEnv: under NEXT_STEP (make_vec's default) RecSimVecEnv
    resets ended users at once, which is exactly the SAME_STEP stream SB3 expects."""
    eval_seed, eval_users, eval_steps = 123, 64, 200

    def per_user_reward(policy) -> np.ndarray:
        env = gym.make_vec("recsim_env/Stationary-v0", num_envs=eval_users)
        obs, _ = env.reset(seed=eval_seed)  # same users and candidates for both policies
        total = np.zeros(eval_users)
        for _ in range(eval_steps):
            obs, rewards, *_ = env.step(policy(obs))
            total += rewards
        return total / eval_steps

    rng = np.random.default_rng(0)
    random_reward = per_user_reward(lambda obs: rng.integers(0, 20, size=len(obs)))

    agent = SB3DQN(
        gym.make_vec("recsim_env/Stationary-v0", num_envs=16, autoreset_mode=autoreset_mode),
        seed=0,
        gamma=0.5,
        lr=1e-3,
        batch_size=64,
        buffer_size=40_000,
        learning_starts=1_000,
        train_freq=1,
        target_update_interval=1_000,
        exploration_fraction=0.2,
    )
    agent.learn(40_000)
    dqn_reward = per_user_reward(lambda obs: agent.act(obs))

    diff = dqn_reward.mean() - random_reward.mean()
    stderr = np.sqrt(dqn_reward.var(ddof=1) / eval_users + random_reward.var(ddof=1) / eval_users)
    assert diff > 3 * stderr, (dqn_reward.mean(), random_reward.mean(), stderr)


def test_schedules_can_span_several_learn_calls():
    common = dict(
        hidden_sizes=[8], learning_starts=10_000, epsilon_start=1.0, epsilon_end=0.0, lr=1e-3
    )
    chunked = SB3DQN(
        vector_env(),
        seed=0,
        exploration_fraction=1.0,
        lr_schedule="linear",
        schedule_steps=2_000,
        **common,
    )
    chunked.learn(1_000)
    # halfway through the 2,000-step horizon (SB3's DQN may overshoot by one rollout: 4 steps × B)
    tolerance = 2 * 4 * B / 2_000
    assert chunked.model.exploration_rate == pytest.approx(0.5, abs=tolerance)
    lr = chunked.model.lr_schedule(chunked.model._current_progress_remaining)
    assert lr == pytest.approx(0.5e-3, abs=tolerance * 1e-3)
    chunked.learn(1_000)
    assert chunked.model.exploration_rate == pytest.approx(0.0, abs=tolerance)

    # SB3's own semantics (no horizon): each learn call anneals over its own budget
    per_call = SB3DQN(vector_env(), seed=0, exploration_fraction=0.5, **common)
    per_call.learn(1_000)
    assert per_call.model.exploration_rate == 0.0


def test_torch_threads_is_honoured():
    before = torch.get_num_threads()
    try:
        SB3A2C(vector_env(), torch_threads=2, **TINY[SB3A2C])
        assert torch.get_num_threads() == 2
        SB3A2C(vector_env(), **TINY[SB3A2C])
        assert torch.get_num_threads() == 1  # our default
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("cls", "key", "value"),
    [
        (SB3DQN, "gamma", 1.5),
        (SB3DQN, "lr", 0.0),
        (SB3DQN, "lr", "fast"),
        (SB3DQN, "lr_schedule", "cosine"),
        (SB3DQN, "epsilon_start", -0.1),
        (SB3DQN, "exploration_fraction", 2.0),
        (SB3DQN, "hidden_sizes", []),
        (SB3DQN, "hidden_sizes", [64, 0]),
        (SB3DQN, "batch_size", 0),
        (SB3DQN, "buffer_size", 10.5),
        (SB3DQN, "train_freq", [4, "minute"]),
        (SB3DQN, "gradient_steps", 0),
        (SB3DQN, "device", "tpu"),
        (SB3DQN, "torch_threads", 0),
        (SB3DQN, "seed", -1),
        (SB3QRDQN, "n_quantiles", 0),
        (SB3PPO, "batch_size", 1),
        (SB3PPO, "ent_coef", -0.01),
        (SB3PPO, "n_steps", 0),
        (SB3A2C, "gae_lambda", 1.2),
        (SB3A2C, "log_interval", True),
    ],
)
def test_invalid_hyperparameters_raise_clear_errors(cls, key, value):
    with pytest.raises(ValueError, match="allowed") as err:
        cls(vector_env(), **{key: value})
    message = str(err.value)
    assert cls.__name__ in message and f"{key}={value!r}" in message


def test_unknown_keys_and_reserved_sb3_kwargs_are_rejected():
    env = vector_env()
    with pytest.raises(ValueError, match=r"learning_rate.*allowed keys:.*lr"):
        SB3DQN(env, learning_rate=1e-3)
    with pytest.raises(ValueError, match="ent_coef"):
        SB3DQN(env, ent_coef=0.01)  # an actor-critic key
    with pytest.raises(ValueError, match=r"sb3_kwargs\.learning_rate.*lr"):
        SB3PPO(env, sb3_kwargs={"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="hidden_sizes"):
        SB3PPO(env, sb3_kwargs={"policy_kwargs": {"net_arch": [8]}})


@pytest.mark.parametrize("cls", ALGORITHMS, ids=lambda c: c.__name__)
def test_slate_mode_is_rejected_clearly(cls):
    with pytest.raises(ValueError, match="single-item mode"):
        cls(vector_env(slate_size=3))


def test_checkpoints_are_typed(tmp_path, caplog):
    agent = SB3A2C(vector_env(), seed=0, **TINY[SB3A2C])
    agent.save(tmp_path / "a2c.zip")
    with pytest.raises(ValueError, match="SB3A2C checkpoint, not SB3PPO"):
        SB3PPO.load(tmp_path / "a2c.zip", trust_checkpoints=True)
    # SB3's zips are cloudpickle: they load only when trusted, and the error says how
    with pytest.raises(ValueError, match="loads only with trust_checkpoints=true"):
        SB3A2C.load(tmp_path / "a2c.zip")
    # SB3's zips are cloudpickle (unlike our agents' checkpoints): every load says so
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="agents.sb3.adapters"):
        SB3A2C.load(tmp_path / "a2c.zip", trust_checkpoints=True)
    assert any(
        "SB3 checkpoints are cloudpickle: load only from trusted dirs" in r.getMessage()
        and str(tmp_path / "a2c.zip") in r.getMessage()
        for r in caplog.records
    ), caplog.text


def test_replay_buffer_can_travel_with_the_checkpoint(tmp_path):
    agent = SB3DQN(vector_env(), seed=0, save_replay_buffer=True, **TINY[SB3DQN])
    agent.learn(20 * B)
    path = tmp_path / "dqn.zip"
    agent.save(path)
    loaded = SB3DQN.load(path, env=vector_env(), trust_checkpoints=True)
    assert loaded.model.replay_buffer.size() == agent.model.replay_buffer.size() > 0
    np.testing.assert_array_equal(
        loaded.model.replay_buffer.observations, agent.model.replay_buffer.observations
    )


def _global_rng_state():
    # SB3 draws from the global RNGs (its seed seeds them), so the runner checkpoints them
    return random.getstate(), np.random.get_state(), torch.get_rng_state()  # noqa: NPY002


def _set_global_rng_state(state):
    random.setstate(state[0])
    np.random.set_state(state[1])  # noqa: NPY002
    torch.set_rng_state(state[2])


@pytest.mark.parametrize("cls", ALGORITHMS, ids=lambda c: c.__name__)
def test_resume_from_checkpoint_continues_the_same_stream(cls, tmp_path):
    """The runner's restore sequence (experiments.run.checkpoint): load the agent with the env, restore
    the env's state and the global RNGs, hand back the last observation; then learning continues
    exactly as if never interrupted (at a rollout boundary)."""
    budget = 16 * B * 4  # a multiple of every tiny rollout length
    agent = cls(vector_env(), seed=0, **TINY[cls])
    before = Recorder()
    agent.learn(budget, callback=before)
    agent.save(tmp_path / "agent", include_replay=True)
    env_state, rng_state = agent.env.state_dict(), _global_rng_state()
    reference = Recorder()
    agent.learn(budget, callback=reference)

    env = vector_env()
    resumed = cls.load(tmp_path / "agent", env=env, trust_checkpoints=True)
    env.load_state_dict(env_state)
    _set_global_rng_state(rng_state)
    assert resumed.model._last_obs is None  # SB3 would reset the env at the next learn()
    resumed.continue_stream(before.transitions[-1].next_obs, before.transitions[-1].info)
    continued = Recorder()
    resumed.learn(budget, callback=continued)

    assert resumed.num_timesteps == agent.num_timesteps
    assert len(continued.transitions) == len(reference.transitions)
    for got, want in zip(continued.transitions, reference.transitions, strict=True):
        np.testing.assert_array_equal(got.info["clock"], want.info["clock"])
        np.testing.assert_array_equal(got.actions, want.actions)
        np.testing.assert_array_equal(got.rewards, want.rewards)
