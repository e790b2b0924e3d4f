"""PQN (agents/pqn): config validation, Q(λ) targets against a plain loop, acting, learning on
Stationary-v0 against baselines measured in the same test, exact resume, slate mode, the training
benchmark's smoke run. Real simulator, fixed seeds, tiny budgets."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from recording import AUTORESET_MODES, ENV_ID, Recorder, make_env

import recsim_env
from agents import PQNAgent as LazyPQNAgent
from agents.base import Agent
from agents.pqn import PQNAgent, PQNConfig, q_lambda_targets

FAST = dict(hidden_sizes=[32], rollout_steps=8, minibatch_size=32, num_minibatches=4)


# ---------------------------------------------------------------------------------- config
INVALID = [
    ("gamma", 1.5, r"\[0, 1\]"),
    ("gamma", "0.9", "a finite number"),
    ("td_lambda", -0.1, r"\[0, 1\]"),
    ("td_lambda", float("nan"), "a finite number"),
    ("loss", "l1", "mse"),
    ("reward_scale", 0.0, "> 0"),
    ("lr", 0.0, "> 0"),
    ("lr_schedule", "cosine", "constant"),
    ("lr_end", -1.0, ">= 0"),
    ("max_grad_norm", 0.0, "> 0"),
    ("rollout_steps", 0, ">= 1"),
    ("rollout_steps", 8.5, "an integer"),
    ("num_epochs", 0, ">= 1"),
    ("num_minibatches", True, "an integer"),
    ("minibatch_size", 0, ">= 1"),
    ("epsilon_start", 1.2, r"\[0, 1\]"),
    ("exploration_fraction", -0.5, r"\[0, 1\]"),
    ("total_steps", 0, ">= 1"),
    ("network", "transformer", "candidate"),
    ("hidden_sizes", [], "non-empty list"),
    ("hidden_sizes", [64, 0], "integers >= 1"),
    ("hidden_sizes", "64", "non-empty list"),
    ("layer_norm", "yes", "true or false"),
    ("dueling", "yes", "true or false"),
    ("device", "tpu", "cuda:<index>"),
    ("torch_threads", 0, ">= 1"),
    ("seed", -1, ">= 0"),
]


@pytest.mark.parametrize(
    ("key", "value", "allowed"), INVALID, ids=[f"{k}={v!r}" for k, v, _ in INVALID]
)
def test_invalid_hyperparameter_names_key_value_and_allowed_range(key, value, allowed):
    with pytest.raises(ValueError, match=rf"PQNConfig\.{key}=.*allowed: .*{allowed}") as err:
        PQNConfig(**{key: value})
    assert repr(value) in str(err.value)


def test_unknown_key_and_invalid_value_through_the_agent():
    env = make_env(2)
    with pytest.raises(ValueError, match=r"unknown PQN hyperparameter.*'lambda'.*td_lambda"):
        PQNAgent(env, **{"lambda": 0.5})
    with pytest.raises(ValueError, match=r"PQNConfig\.td_lambda=2"):
        PQNAgent(env, td_lambda=2)


def test_config_normalises_types_and_counts_minibatches():
    cfg = PQNConfig(gamma=1, hidden_sizes=(np.int64(16), 8), rollout_steps=np.int32(4), seed=3)
    assert cfg.gamma == 1.0 and isinstance(cfg.gamma, float)
    assert cfg.hidden_sizes == [16, 8] and type(cfg.rollout_steps) is int
    assert PQNConfig.from_dict(cfg.to_dict()) == cfg
    cfg = PQNConfig(num_minibatches=32, minibatch_size=256)
    assert [cfg.minibatches(16 * b) for b in (16, 256, 2048)] == [1, 16, 32]


# ---------------------------------------------------------------------------------- Q(λ)
def reference_q_lambda(rewards, terminated, truncated, next_values, gamma, lam):
    """Plain loops, user by user, backwards in time."""
    steps, users = rewards.shape
    out = np.zeros((steps, users))
    for e in range(users):
        for t in reversed(range(steps)):
            if terminated[t, e]:
                out[t, e] = rewards[t, e]
            elif truncated[t, e] or t == steps - 1:
                out[t, e] = rewards[t, e] + gamma * next_values[t, e]
            else:
                blend = (1 - lam) * next_values[t, e] + lam * out[t + 1, e]
                out[t, e] = rewards[t, e] + gamma * blend
    return out


def as_tensors(*arrays):
    return [torch.as_tensor(a) for a in arrays]


def test_q_lambda_by_hand():
    """T = 3, γ = 0.5, λ = 0.5, no session end: G2 = 3 + 0.5·30 = 18,
    G1 = 2 + 0.5·(0.5·20 + 0.5·18) = 11.5, G0 = 1 + 0.5·(0.5·10 + 0.5·11.5) = 6.375."""
    r = torch.tensor([[1.0], [2.0], [3.0]])
    v = torch.tensor([[10.0], [20.0], [30.0]])
    no = torch.zeros(3, 1, dtype=torch.bool)
    g = q_lambda_targets(r, no, no, v, gamma=0.5, td_lambda=0.5)
    torch.testing.assert_close(g, torch.tensor([[6.375], [11.5], [18.0]]))
    # a termination at t = 1 cuts everything after it; a truncation bootstraps from V(final_obs)
    term = torch.tensor([[False], [True], [False]])
    trunc = torch.tensor([[False], [False], [True]])
    g = q_lambda_targets(r, term, trunc, v, gamma=0.5, td_lambda=0.5)
    torch.testing.assert_close(g, torch.tensor([[1 + 0.5 * (0.5 * 10 + 0.5 * 2)], [2.0], [18.0]]))


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.65, 1.0])
def test_q_lambda_matches_a_plain_loop(lam):
    rng = np.random.default_rng(int(lam * 100))
    steps, users, gamma = 12, 7, 0.9
    rewards = rng.random((steps, users)).astype(np.float32)
    terminated = rng.random((steps, users)) < 0.15
    truncated = (rng.random((steps, users)) < 0.15) & ~terminated
    truncated[4, 2] = terminated[4, 2] = True  # both: the termination wins (no bootstrap)
    next_values = (rng.random((steps, users)) * 5).astype(np.float32)
    got = q_lambda_targets(*as_tensors(rewards, terminated, truncated, next_values), gamma, lam)
    want = reference_q_lambda(rewards, terminated, truncated, next_values, gamma, lam)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    if lam == 0.0:  # one-step Q-learning
        one_step = rewards + gamma * np.where(terminated, 0.0, next_values)
        np.testing.assert_allclose(got.numpy(), one_step, rtol=1e-5, atol=1e-5)


class TargetSpy(PQNAgent):
    """Records each rollout's targets and the network that collected it."""

    def rollout_targets(self) -> torch.Tensor:
        self.spied_net = copy.deepcopy(self.q_net)
        self.spied_targets = super().rollout_targets().clone()
        return self.spied_targets


@pytest.mark.parametrize("slate_size", [0, 2])
def test_agent_targets_follow_final_obs_under_same_step_autoreset(slate_size):
    """Short sessions (max_session_steps=3) end inside the rollout: the agent's targets must
    bootstrap truncated sessions from info["final_obs"], not from the next user's first obs."""
    steps, users = 8, 6
    kwargs = dict(max_session_steps=3, **({"slate_size": slate_size} if slate_size else {}))
    agent = TargetSpy(make_env(users, **kwargs), seed=0, total_steps=10_000,
                      **{**FAST, "rollout_steps": steps, "td_lambda": 0.7})  # fmt: skip
    rec = Recorder()
    agent.learn(steps * users, rec)
    assert agent.updates == 1
    tr = rec.transitions
    truncated = np.stack([t.truncated for t in tr])
    terminated = np.stack([t.terminated for t in tr])
    assert truncated.any()  # the case under test happened

    def value(obs):
        with torch.no_grad():
            q = agent.spied_net(torch.as_tensor(obs))
        return (q.topk(slate_size, 1).values.mean(1) if slate_size else q.max(1).values).numpy()

    ended = truncated | terminated
    next_values = np.stack(
        [value(np.where(ended[t][:, None], tr[t].final_obs, tr[t].next_obs)) for t in range(steps)]
    )
    want = reference_q_lambda(
        np.stack([t.rewards for t in tr]), terminated, truncated, next_values, 0.99, 0.7
    )
    np.testing.assert_allclose(agent.spied_targets.numpy(), want, rtol=1e-4, atol=1e-4)
    # the final observation differs from what the next row holds, so the distinction is tested
    t, e = np.argwhere(truncated)[0]
    assert not np.array_equal(tr[t].final_obs[e], tr[t].next_obs[e])


# ---------------------------------------------------------------------------------- acting
@pytest.mark.parametrize("network", ["candidate", "mlp"])
def test_act_shapes_dtypes_and_determinism(network):
    env = make_env(5)
    agent = PQNAgent(env, network=network, seed=0, total_steps=1000, **FAST)
    assert isinstance(agent, Agent) and LazyPQNAgent is PQNAgent
    obs, _ = env.reset(seed=0)
    greedy = agent.act(obs)
    assert greedy.shape == (5,) and greedy.dtype == np.int64
    np.testing.assert_array_equal(agent.act(obs), greedy)  # explore=False is deterministic
    np.testing.assert_array_equal(greedy, agent.q_values(obs).argmax(axis=1))
    np.testing.assert_array_equal(agent.scores(obs), agent.q_values(obs))
    assert agent.act(obs[0]).shape == () and agent.act(obs[0]) == greedy[0]
    assert agent.epsilon == 1.0
    explored = np.stack([agent.act(obs, explore=True) for _ in range(20)])
    assert (explored != greedy).any()


def test_explore_without_horizon_raises_clearly():
    agent = PQNAgent(make_env(2), **FAST)
    obs, _ = agent.env.reset(seed=0)
    with pytest.raises(ValueError, match="total_steps"):
        agent.act(obs, explore=True)


def test_slate_mode_acts_top_k_and_learns():
    env = make_env(4, slate_size=3)
    agent = PQNAgent(env, seed=0, **FAST)
    obs, _ = env.reset(seed=0)
    greedy = agent.act(obs)
    assert greedy.shape == (4, 3) and greedy.dtype == np.int64
    np.testing.assert_array_equal(greedy, np.argsort(-agent.q_values(obs), axis=1)[:, :3])
    rec = Recorder()
    before = [p.detach().clone() for p in agent.q_net.parameters()]
    agent.learn(320, rec)
    assert len(rec.losses) == 320 // (4 * 8) and np.isfinite(rec.losses).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.q_net.parameters(), strict=True))
    assert all(len(set(row)) == 3 for row in agent.act(obs, explore=True).tolist())


@pytest.mark.parametrize(
    "overrides",
    [
        dict(network="mlp"),
        dict(loss="huber", layer_norm=False),
        dict(lr_schedule="linear"),
        dict(dueling=True),
        dict(network="mlp", dueling=True),
    ],
    ids=["mlp", "huber-no-layernorm", "linear-lr", "dueling", "mlp-dueling"],
)
def test_options_train(overrides):
    agent = PQNAgent(make_env(4), seed=0, **{**FAST, **overrides})
    rec = Recorder()
    agent.learn(640, rec)
    trained = [t.metrics for t in rec.transitions if t.metrics]
    assert len(trained) == 640 // 32 and agent.updates == len(trained)
    assert set(trained[-1]) == {"train/loss", "train/epsilon", "train/lr", "train/q_mean"}
    assert agent.gradient_steps_done == len(trained) * 2 * 1  # 32 transitions: one minibatch
    if overrides.get("lr_schedule") == "linear":
        assert trained[-1]["train/lr"] < trained[0]["train/lr"] < 1e-3


def test_dueling_keeps_whole_observations_and_scores_every_candidate():
    env = make_env(4)
    obs, _ = env.reset(seed=0)
    agent = PQNAgent(env, seed=0, dueling=True, **FAST)
    assert agent.q_net.dueling and not agent.rollout.compact  # the advantage mean needs them all
    assert agent.rollout.obs.shape[-1] == obs.shape[1] and agent.rollout.items.numel() == 0
    assert PQNAgent(make_env(4), seed=0, **FAST).rollout.compact  # default: unchanged


def test_reward_scale_scales_the_learning_targets_only():
    """The rollout's rewards (hence the Q(λ) targets) are the env's times ``reward_scale``; the
    rewards the agent reports and acts on are the env's. With γ = 0 the targets are the rewards."""
    hp = dict(seed=2, gamma=0.0, **{**FAST, "rollout_steps": 8})
    runs = {}
    for scale in (1.0, 0.25):
        agent = PQNAgent(make_env(4), reward_scale=scale, **hp)
        rec = Recorder()
        agent.learn(4 * 7, rec)  # 7 of 8 rows: the rollout is not trained on yet
        env_rewards = np.stack([t.rewards for t in rec.transitions])
        np.testing.assert_allclose(
            agent.rollout.rewards[:7].numpy(), scale * env_rewards, rtol=1e-6
        )
        assert env_rewards.any()
        runs[scale] = env_rewards
    np.testing.assert_array_equal(runs[1.0], runs[0.25])  # same actions before any update


# ---------------------------------------------------------------------------------- learning
def greedy_eval(policy, world, num_envs: int, seed: int, steps: int = 60) -> float:
    """Mean reward per user-step of ``policy`` on fresh users of ``world``."""
    env = recsim_env.RecSimVectorEnv(num_envs, world=world, **gym.spec(ENV_ID).kwargs)
    obs, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(steps):
        obs, reward, *_ = env.step(policy(obs))
        total += float(reward.mean())
    return total / steps


@pytest.mark.parametrize(
    "autoreset_mode", [AUTORESET_MODES[0], pytest.param(AUTORESET_MODES[1], marks=pytest.mark.slow)]
)
def test_learns_to_beat_random_and_popularity_over_three_seeds(autoreset_mode):
    """Stationary users: greedy PQN (default configuration) after 48k user-steps beats random and
    popularity, measured on the same fresh users of the same world: by 10 % on each of 3 seeds,
    by 20 % on average (measured: 36 %, 39 %, 19 %)."""
    users = 64
    layout = make_env(1).obs_layout
    margins = []
    for seed in (0, 1, 2):
        env = make_env(users, autoreset_mode=autoreset_mode)
        agent = PQNAgent(env, seed=seed, exploration_fraction=0.2)
        agent.learn(48_000)
        world = env.unwrapped.world
        rng = np.random.default_rng(seed)
        pqn = greedy_eval(agent.act, world, users, seed + 100)
        rand = greedy_eval(lambda o, r=rng: r.integers(0, 20, len(o)), world, users, seed + 100)
        pop = greedy_eval(lambda o: layout.popularity(o).argmax(axis=1), world, users, seed + 100)
        print(f"seed {seed}: pqn {pqn:.3f} random {rand:.3f} popularity {pop:.3f}")
        margins.append(pqn / max(rand, pop))
    assert min(margins) > 1.1 and np.mean(margins) > 1.2, margins


# ---------------------------------------------------------------------------------- checkpoints
def test_checkpoint_is_weights_only_and_acts_without_env(tmp_path):
    env = make_env(4)
    agent = PQNAgent(env, seed=3, **FAST)
    agent.learn(200)  # ends mid-rollout (200 / 4 = 50 vector steps; rollouts of 8)
    path = tmp_path / "ckpt" / "pqn.pt"
    agent.save(path)
    state = torch.load(path, weights_only=True)  # plain tensors and data, no pickled objects
    assert state["rollout"]["t"] == 50 % 8 and state["config"]["rollout_steps"] == 8
    obs, _ = make_env(4).reset(seed=11)
    for loaded in (PQNAgent.load(path, env=make_env(4)), PQNAgent.load(path)):
        np.testing.assert_array_equal(loaded.q_values(obs), agent.q_values(obs))
        assert loaded.num_timesteps == 200 and loaded.config == agent.config
    state["format"] = 99
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="unsupported PQN checkpoint format 99"):
        PQNAgent.load(tmp_path / "future.pt")


@pytest.mark.parametrize("overrides", [dict(), dict(network="mlp", slate_size=2)])
def test_resume_from_checkpoint_continues_exactly(tmp_path, overrides):
    """learn(N1) → save + env.state_dict() → load both → learn(N2) equals learn(N1 + N2); N1 ends
    mid-rollout, so the partial rollout travels in the checkpoint."""
    overrides = dict(overrides)
    env_kwargs = {"slate_size": overrides.pop("slate_size")} if "slate_size" in overrides else {}
    hp = dict(seed=5, total_steps=2_000, **FAST, **overrides)
    n1, n2 = 4 * 45, 4 * 60  # 45 vector steps: 5 rows into the sixth rollout

    full_agent = PQNAgent(make_env(4, **env_kwargs), **hp)
    full_rec = Recorder()
    full_agent.learn(n1 + n2, full_rec)

    agent = PQNAgent(make_env(4, **env_kwargs), **hp)
    agent.learn(n1)
    agent.save(tmp_path / "pqn.pt")
    env_state = copy.deepcopy(agent.env.state_dict())
    del agent
    torch.manual_seed(1234)
    np.random.seed(1234)  # noqa: NPY002 — the agent must not depend on the global streams

    env = make_env(4, **env_kwargs)
    env.load_state_dict(env_state)
    resumed = PQNAgent.load(tmp_path / "pqn.pt", env=env)
    rec = Recorder()
    resumed.learn(n2, rec)

    tail = full_rec.transitions[n1 // 4 :]
    assert len(rec.losses) >= 5
    assert rec.losses == [t.metrics["train/loss"] for t in tail if t.metrics]
    for a, b in zip(rec.transitions, tail, strict=True):
        np.testing.assert_array_equal(a.actions, b.actions)
    for p, q in zip(resumed.q_net.parameters(), full_agent.q_net.parameters(), strict=True):
        assert torch.equal(p, q)
    assert resumed.num_timesteps == full_agent.num_timesteps == n1 + n2
    assert resumed.epsilon == full_agent.epsilon


# ---------------------------------------------------------------------------------- bench
def test_bench_training_smoke():
    from experiments.bench_train import AGENTS, bench_training, format_table

    report = bench_training(
        total_steps=640, num_envs=8, seed=0, hidden_sizes=(16,), learning_starts=200,
        buffer_size=2_000, batch_size=16, target_update_interval=200, eval_steps=128,
        eval_envs=8,
    )  # fmt: skip
    assert set(report["results"]) == set(AGENTS)
    for result in report["results"].values():
        assert result["sps"] > 0 and result["cpu_sps"] > 0
        assert np.isfinite([result["reward_final"], result["eval_reward"]]).all()
    assert set(report["ratios"]) == {f"{a}/sb3_dqn" for a in AGENTS if a != "sb3_dqn"}
    assert report["settings"]["update_to_data"] == 1 / 8
    table = format_table(report)
    assert all(name in table for name in AGENTS)
