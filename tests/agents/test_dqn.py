"""Our PyTorch DQN (agents/dqn): config validation, networks, n-step replay, acting, learning,
checkpoint / exact resume. Real simulator, fixed seeds, tiny budgets."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from recording import AUTORESET_MODES, Recorder, make_env
from recording import make_env as make_mode_env

import recsim_env  # noqa: F401  (registers the ids)
from agents.base import Agent, final_observations
from agents.dqn import DQNAgent, DQNConfig, ReplayBuffer, build_q_network
from agents.qlearning.losses import (
    adam_step,
    bootstrap_value,
    optimizer_step,
    td_loss,
    td_target,
    update_target,
)
from agents.qlearning.schedules import epsilon_schedule, lr_schedule
from recsim_env.observation import ObsLayout

FAST = dict(hidden_sizes=[32], buffer_size=4_000, learning_starts=200, batch_size=32)


# ---------------------------------------------------------------------------------- config
INVALID = [
    ("gamma", 1.5),
    ("gamma", -0.1),
    ("gamma", float("nan")),
    ("gamma", "0.9"),
    ("lr", 0.0),
    ("lr", -1e-3),
    ("lr", float("inf")),
    ("lr_schedule", "cosine"),
    ("lr_end", -1.0),
    ("loss", "l1"),
    ("max_grad_norm", 0.0),
    ("batch_size", 0),
    ("batch_size", 32.5),
    ("batch_size", True),
    ("epsilon_start", 1.2),
    ("epsilon_end", -0.01),
    ("exploration_fraction", 2.0),
    ("buffer_size", 0),
    ("n_step", 0),
    ("double", "yes"),
    ("dueling", 1),
    ("tau", 0.0),
    ("tau", 1.5),
    ("target_update_interval", 0),
    ("learning_starts", -1),
    ("train_freq", 0),
    ("gradient_steps", 0),
    ("gradient_steps", -2),
    ("total_steps", 0),
    ("network", "transformer"),
    ("hidden_sizes", []),
    ("hidden_sizes", [64, 0]),
    ("hidden_sizes", "64"),
    ("hidden_sizes", 64),
    ("device", "tpu"),
    ("device", "cuda:x"),
    ("cuda_graphs", "yes"),
    ("torch_threads", 0),
    ("seed", -1),
    ("seed", 1.5),
]


@pytest.mark.parametrize(("key", "value"), INVALID, ids=[f"{k}={v!r}" for k, v in INVALID])
def test_invalid_config_value_raises_naming_key_and_value(key, value):
    with pytest.raises(ValueError, match=rf"DQNConfig\.{key}=.*allowed") as err:
        DQNConfig(**{key: value})
    assert repr(value) in str(err.value)


def test_buffer_smaller_than_batch_raises():
    with pytest.raises(ValueError, match=r"buffer_size=16 .*batch_size \(64\)"):
        DQNConfig(buffer_size=16, batch_size=64)


def test_unknown_key_and_invalid_value_through_the_agent():
    env = make_env(2)
    with pytest.raises(ValueError, match=r"unknown DQN hyperparameter.*'learning_rate'.*gamma"):
        DQNAgent(env, learning_rate=1e-3)
    with pytest.raises(ValueError, match=r"DQNConfig\.gamma=2"):
        DQNAgent(env, gamma=2)


def test_valid_config_normalises_types():
    cfg = DQNConfig(gamma=1, hidden_sizes=(np.int64(16), 8), batch_size=np.int32(8), seed=3)
    assert cfg.gamma == 1.0 and isinstance(cfg.gamma, float)
    assert cfg.hidden_sizes == [16, 8] and all(type(h) is int for h in cfg.hidden_sizes)
    assert type(cfg.batch_size) is int
    assert DQNConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_device_without_cuda_raises():
    with pytest.raises(ValueError, match=r"device='cuda'.*not available"):
        DQNAgent(make_env(2), device="cuda")
    with pytest.raises(ValueError, match=r"cuda_graphs=True is invalid with device='cpu'"):
        DQNAgent(make_env(2), device="cpu", cuda_graphs=True)


# ---------------------------------------------------------------------------------- schedules
def test_schedules():
    eps = epsilon_schedule(1.0, 0.1, 0.5, horizon=1000)
    assert eps(0) == 1.0 and eps(250) == pytest.approx(0.55) and eps(500) == eps(10**6) == 0.1
    assert lr_schedule("constant", 1e-3, 0.0, 1000)(999) == 1e-3
    lin = lr_schedule("linear", 1e-3, 1e-4, 1000)
    assert lin(0) == 1e-3 and lin(500) == pytest.approx(5.5e-4) and lin(2000) == 1e-4


# ---------------------------------------------------------------------------------- networks
@pytest.mark.parametrize("kind", ["candidate", "mlp"])
@pytest.mark.parametrize("dueling", [False, True])
def test_q_of_matches_full_forward(kind, dueling):
    layout = make_env(2).obs_layout
    torch.manual_seed(0)
    net = build_q_network(kind, layout, [16, 8], dueling)
    obs = torch.rand(5, layout.size)
    q = net(obs)
    assert q.shape == (5, layout.num_candidates)
    actions = torch.tensor([0, 3, 19, 7, 7])
    torch.testing.assert_close(net.q_of(obs, actions).squeeze(1), q[torch.arange(5), actions])
    slates = torch.tensor([[1, 2], [0, 19], [5, 4], [3, 3], [9, 8]])
    torch.testing.assert_close(net.q_of(obs, slates), q.gather(1, slates))


def test_candidate_network_is_slot_equivariant():
    """Shared weights: permuting the candidates permutes their Q-values (no slot bias)."""
    layout = make_env(2).obs_layout
    torch.manual_seed(1)
    net = build_q_network("candidate", layout, [16], dueling=True)
    obs = torch.rand(3, layout.size)
    perm = torch.randperm(layout.num_candidates)
    items = obs[:, : layout.items_size].reshape(3, layout.num_candidates, layout.item_dim)
    permuted = torch.cat([items[:, perm].reshape(3, -1), obs[:, layout.items_size :]], dim=1)
    torch.testing.assert_close(net(permuted), net(obs)[:, perm])


# ---------------------------------------------------------------------------------- losses
class TableQ(torch.nn.Module):
    """A 'network' whose Q-values are the observation times ``scale``: hand-checkable targets."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs * self.scale

    def q_of(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        columns = actions.unsqueeze(1) if actions.dim() == 1 else actions
        return self(obs).gather(1, columns)


def test_td_target_by_hand():
    """online Q(s') = [1, 3, 2] / [0, -1, 5]; target Q = 10 × online. Double DQN: the online net
    picks (1, 2), the target net evaluates them (30, 50); plain DQN takes the target's max."""
    online, target = TableQ(1.0), TableQ(10.0)
    next_obs = torch.tensor([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    returns = torch.tensor([0.5, 1.0])
    discounts = torch.tensor([0.9, 0.81])  # γ = 0.9, n-step windows of 1 and 2 steps
    terminated = torch.tensor([0.0, 1.0])

    double = bootstrap_value(online, target, next_obs, double=True)
    torch.testing.assert_close(double, torch.tensor([30.0, 50.0]))
    torch.testing.assert_close(td_target(returns, discounts, terminated, double),
                               torch.tensor([0.5 + 0.9 * 30.0, 1.0]))  # fmt: skip
    # a target net that disagrees: Double DQN evaluates the online net's pick, not the max
    flipped = TableQ(-1.0)
    torch.testing.assert_close(
        bootstrap_value(online, flipped, next_obs, double=True), torch.tensor([-3.0, -5.0])
    )
    torch.testing.assert_close(
        bootstrap_value(online, flipped, next_obs, double=False), torch.tensor([-1.0, 1.0])
    )
    # slate mode: mean of the top-2 (online picks {1, 2} and {2, 0}; target values ×10)
    torch.testing.assert_close(
        bootstrap_value(online, target, next_obs, double=True, slate_size=2),
        torch.tensor([25.0, 25.0]),
    )
    # Huber: quadratic inside |δ| < 1, linear outside
    loss = td_loss(torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0]))
    torch.testing.assert_close(loss, torch.tensor((0.5 * 0.25 + (3.0 - 0.5)) / 2))
    # MSE: ½ squared error everywhere (the same as Huber inside |δ| < 1)
    loss = td_loss(torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0]), "mse")
    torch.testing.assert_close(loss, torch.tensor((0.5 * 0.25 + 0.5 * 9.0) / 2))
    with pytest.raises(ValueError, match="kind='l1'"):
        td_loss(torch.tensor([0.0]), torch.tensor([1.0]), "l1")


def test_optimizer_step_clips_and_target_update():
    param = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([param], lr=1.0)
    loss = (param * torch.tensor([30.0, 40.0])).sum()  # gradient (30, 40), norm 50
    optimizer_step(opt, [param], loss, max_grad_norm=5.0)
    torch.testing.assert_close(param.detach(), torch.tensor([-3.0, -4.0]), rtol=1e-5, atol=1e-5)
    target = [torch.zeros(2)]
    update_target(target, [param.detach()], tau=0.5)
    torch.testing.assert_close(target[0], torch.tensor([-1.5, -2.0]), rtol=1e-5, atol=1e-5)
    update_target(target, [param.detach()], tau=1.0)
    assert torch.equal(target[0], param.detach())


@pytest.mark.parametrize("max_grad_norm", [None, 0.05, 1e6])
def test_optimizer_step_equals_torch_clip_and_adam_bit_for_bit(max_grad_norm):
    """The lean path (multi-tensor clip, the fused Adam kernel called directly) computes exactly
    what zero_grad + clip_grad_norm_ + Adam(fused=True).step compute."""
    layout = make_env(1).obs_layout
    nets, opts = [], []
    for _ in range(2):
        torch.manual_seed(0)
        net = build_q_network("candidate", layout, [16, 8], dueling=True)
        nets.append(net)
        opts.append(torch.optim.Adam(net.parameters(), lr=1e-2, fused=True))
    gen = torch.Generator().manual_seed(1)
    for step in range(5):
        obs = torch.rand(32, layout.size, generator=gen)
        target = torch.rand(32, layout.num_candidates, generator=gen)
        fast, ref = nets
        optimizer_step(opts[0], list(fast.parameters()), td_loss(fast(obs), target), max_grad_norm)
        opts[1].zero_grad(set_to_none=True)
        td_loss(ref(obs), target).backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(ref.parameters(), max_grad_norm)
        opts[1].step()
        for a, b in zip(fast.parameters(), ref.parameters(), strict=True):
            assert torch.equal(a, b), step
    state = opts[0].state_dict()["state"]
    assert all(int(s["step"]) == 5 for s in state.values())  # the optimiser's own state advanced
    params = list(nets[0].parameters())
    assert adam_step(opts[0], params, [p.grad for p in params])  # the fast path was the one taken
    assert not adam_step(torch.optim.SGD(params, lr=0.1), params, [p.grad for p in params])


# ---------------------------------------------------------------------------------- replay
def reference_nstep(rewards, terminated, truncated, next_obs_id, t, e, n, gamma):
    """Brute force: walk stream e from step t."""
    ret, disc, k = 0.0, 1.0, t
    while True:
        ret += disc * rewards[k, e]
        disc *= gamma
        if terminated[k, e]:
            return ret, 0.0, next_obs_id[k, e], 1.0
        if truncated[k, e] or k == t + n - 1:
            return ret, disc, next_obs_id[k, e], 0.0
        k += 1


@pytest.mark.parametrize("n_step", [1, 3])
def test_replay_nstep_returns_across_streams(n_step):
    rng = np.random.default_rng(0)
    steps, b, gamma = 40, 3, 0.9
    rewards = rng.random((steps, b)).astype(np.float32)
    terminated = rng.random((steps, b)) < 0.15
    truncated = (rng.random((steps, b)) < 0.1) & ~terminated
    # observation k*b + e for step k of stream e (1-D so rows are identifiable); next = +1000
    buf = ReplayBuffer(25 * b, b, obs_dim=1, n_step=n_step, gamma=gamma)  # wraps around
    for k in range(steps):
        obs = (k * b + np.arange(b, dtype=np.float32))[:, None]
        buf.add(obs, np.arange(b) + k, rewards[k], obs + 1000, terminated[k], truncated[k])
    assert len(buf) == 25 * b and buf.sampleable == (25 - n_step + 1) * b
    batch = buf.sample(500, np.random.default_rng(1))
    next_ids = (np.arange(steps)[:, None] * b + np.arange(b)) + 1000
    seen_rows = set()
    for i in range(500):
        ident = int(batch.obs[i, 0])
        t, e = divmod(ident, b)
        seen_rows.add(t)
        assert batch.actions[i] == e + t
        ret, disc, nxt, term = reference_nstep(
            rewards, terminated, truncated, next_ids, t, e, n_step, gamma
        )
        assert batch.returns[i] == pytest.approx(ret, rel=1e-5)
        if not term:  # after a termination the discount is irrelevant (no bootstrap)
            assert batch.discounts[i] == pytest.approx(disc, rel=1e-6)
        assert batch.terminated[i] == term
        assert batch.next_obs[i, 0] == nxt
    # only rows still in the ring whose window is complete: the oldest 15 were overwritten
    assert min(seen_rows) >= steps - 25 and max(seen_rows) <= steps - n_step


class TwoArrayReplay:
    """Reference layout: every transition's obs and next_obs side by side (the old buffer)."""

    def __init__(self, rows: int, b: int) -> None:
        self.rows, self.b, self.items = rows, b, []

    def add(self, obs, next_obs) -> None:
        self.items = [*self.items, (obs.copy(), next_obs.copy())][-self.rows :]


def run_env_into(buf: ReplayBuffer, ref: TwoArrayReplay, steps: int, seed: int) -> None:
    """A real vector env with same-step autoreset (short sessions end often) into both layouts."""
    env = make_env(buf.num_envs, max_session_steps=5)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        actions = rng.integers(0, 20, buf.num_envs)
        next_obs, rewards, terminated, truncated, info = env.step(actions)
        final = final_observations(next_obs, info)
        buf.add(obs, actions, rewards, final, terminated, truncated)
        ref.add(obs, final)
        obs = next_obs


@pytest.mark.parametrize("n_step", [1, 3])
def test_replay_stores_each_observation_once_and_exactly(n_step):
    """With same-step autoreset the following row holds the next user's first observation: the
    true last one must come back from the side store, across ring wrap-around and side-store
    growth, and through state_dict."""
    b, rows = 6, 20
    buf = ReplayBuffer(rows * b, b, obs_dim=make_env(1).obs_layout.size, n_step=n_step)
    ref = TwoArrayReplay(rows, b)
    run_env_into(buf, ref, steps=57, seed=0)  # wraps the ring almost three times
    assert buf.side_count > 0 and len(buf.side_row) > b  # the side store grew
    assert buf.nbytes < 0.75 * 2 * buf.obs.nbytes  # vs obs and next_obs side by side
    oldest = buf.pos  # full ring: the oldest row is the next one to write
    for t_ref, (obs, next_obs) in enumerate(ref.items):
        t = np.full(b, (oldest + t_ref) % rows)
        e = np.arange(b)
        np.testing.assert_array_equal(buf.obs[t, e], obs)
        np.testing.assert_array_equal(buf.next_observations(t, e), next_obs)
    other = ReplayBuffer(rows * b, b, obs_dim=buf.obs_dim, n_step=n_step)
    other.load_state_dict(copy.deepcopy(buf.state_dict()))
    run_env_into(buf, ref, steps=9, seed=1)  # both keep going identically after the round trip
    run_env_into(other, TwoArrayReplay(rows, b), steps=9, seed=1)
    a, c = buf.sample(256, np.random.default_rng(3)), other.sample(256, np.random.default_rng(3))
    for field in ("obs", "actions", "returns", "next_obs", "terminated", "discounts"):
        np.testing.assert_array_equal(getattr(a, field), getattr(c, field))


def test_replay_rejects_an_old_layout_checkpoint():
    buf = ReplayBuffer(20, 2, obs_dim=3)
    state = buf.state_dict()
    del state["layout"]
    with pytest.raises(ValueError, match=r"replay layout 1 .*stored once"):
        buf.load_state_dict(state)


def test_replay_state_dict_round_trip():
    buf = ReplayBuffer(20, 2, obs_dim=3, n_step=2, gamma=0.5)
    rng = np.random.default_rng(0)
    for _ in range(13):  # wraps: capacity 10 rows
        buf.add(rng.random((2, 3)), rng.integers(0, 5, 2), rng.random(2), rng.random((2, 3)),
                rng.random(2) < 0.2, rng.random(2) < 0.2)  # fmt: skip
    other = ReplayBuffer(20, 2, obs_dim=3, n_step=2, gamma=0.5)
    other.load_state_dict(copy.deepcopy(buf.state_dict()))
    a, b = buf.sample(64, np.random.default_rng(5)), other.sample(64, np.random.default_rng(5))
    for field in ("obs", "actions", "returns", "next_obs", "terminated", "discounts"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


# ---------------------------------------------------------------------------------- acting
@pytest.mark.parametrize("num_envs", [1, 4, 32])
@pytest.mark.parametrize("network", ["candidate", "mlp"])
def test_act_shapes_dtypes_and_determinism(num_envs, network):
    env = make_env(num_envs)
    agent = DQNAgent(
        env, network=network, seed=0, total_steps=1000, **{**FAST, "learning_starts": 0}
    )
    assert isinstance(agent, Agent)
    obs, _ = env.reset(seed=0)
    greedy = agent.act(obs)
    assert greedy.shape == (num_envs,) and greedy.dtype == np.int64
    assert ((greedy >= 0) & (greedy < 20)).all()
    np.testing.assert_array_equal(agent.act(obs), greedy)  # explore=False is deterministic
    np.testing.assert_array_equal(greedy, agent.q_values(obs).argmax(axis=1))
    assert agent.act(obs[0]).shape == () and agent.act(obs[0]) == greedy[0]
    assert agent.epsilon == 1.0  # position 0 of the schedule: fully random
    explored = np.stack([agent.act(obs, explore=True) for _ in range(20)])
    assert explored.shape == (20, num_envs) and explored.dtype == np.int64
    assert (explored != greedy).any()


def test_explore_without_horizon_raises_clearly():
    agent = DQNAgent(make_env(2), **{**FAST, "learning_starts": 0})
    obs, _ = agent.env.reset(seed=0)
    with pytest.raises(ValueError, match="total_steps"):
        agent.act(obs, explore=True)


def test_slate_mode_acts_top_k_and_learns_without_crash():
    env = make_env(4, slate_size=3)
    agent = DQNAgent(env, seed=0, n_step=2, **FAST)
    obs, _ = env.reset(seed=0)
    greedy = agent.act(obs)
    assert greedy.shape == (4, 3) and greedy.dtype == np.int64
    q = agent.q_values(obs)
    np.testing.assert_array_equal(greedy, np.argsort(-q, axis=1, kind="stable")[:, :3])
    rec = Recorder()
    agent.learn(600, rec)
    assert rec.losses and np.isfinite(rec.losses).all()
    explored = agent.act(obs, explore=True)
    assert all(len(set(row)) == 3 for row in explored.tolist())  # distinct items


# ---------------------------------------------------------------------------------- learning
CONFIGS = [
    dict(dueling=True),
    dict(n_step=3, double=False),
    dict(tau=0.05, target_update_interval=4),
    dict(lr_schedule="linear", lr_end=1e-5),
    dict(network="mlp", dueling=True, n_step=2),
    dict(train_freq=2, gradient_steps=-1),
    dict(max_grad_norm=None),
]


@pytest.mark.parametrize("overrides", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_every_option_trains(overrides):
    env = make_env(4)
    agent = DQNAgent(env, seed=0, **{**FAST, **overrides})
    rec = Recorder()
    before = [p.detach().clone() for p in agent.q_net.parameters()]
    agent.learn(800, rec)
    trained = [t for t in rec.transitions if t.metrics]
    assert trained, "no update happened"
    m = trained[-1].metrics
    assert set(m) == {"train/loss", "train/epsilon", "train/lr", "train/q_mean"}
    assert np.isfinite([m["train/loss"], m["train/q_mean"]]).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.q_net.parameters(), strict=True))
    assert agent.num_timesteps == 800 and agent.observed_steps == 800
    # first training round right after learning_starts user-steps (SB3: num_timesteps > starts)
    first = next(t.num_timesteps for t in rec.transitions if t.metrics)
    assert FAST["learning_starts"] < first <= FAST["learning_starts"] + 4 * agent.config.train_freq
    if agent.config.lr_schedule == "linear":
        assert trained[-1].metrics["train/lr"] < trained[0].metrics["train/lr"] < 1e-3
    if agent.config.gradient_steps == -1:  # one gradient step per user-step collected
        assert agent.gradient_steps_done == 8 * len(trained)
    if agent.config.train_freq == 2:
        assert all(
            t.metrics for t in rec.transitions if t.num_timesteps > 200 and t.num_timesteps % 8 == 0
        )
        assert not any(t.metrics for t in rec.transitions if t.num_timesteps % 8 == 4)


@pytest.mark.parametrize("tau", [1.0, 0.25])
def test_target_update_hard_and_polyak(tau):
    agent = DQNAgent(make_env(4), seed=0, tau=tau, target_update_interval=8, **FAST)
    with torch.no_grad():
        for p in agent.q_net.parameters():
            p.add_(1.0)
    old = [p.clone() for p in agent.target_net.parameters()]
    agent.update()  # vector step 1: interval 8 user-steps / 4 users = every 2nd vector step
    assert all(torch.equal(a, b) for a, b in zip(old, agent.target_net.parameters(), strict=True))
    agent.update()
    for o, t, q in zip(old, agent.target_net.parameters(), agent.q_net.parameters(), strict=True):
        torch.testing.assert_close(t, o + tau * (q - o))


class ChainVecEnv(gym.vector.VectorEnv):
    """A tiny deterministic MDP, ``num_envs`` copies: a chain of ``length`` states, whose one-hot is
    the user features. Candidate 0 continues (reward 1, next state; from the last state the
    episode terminates), candidate 1 stops (reward ``stop_reward``, terminates). Same-step
    autoreset with ``final_obs`` in ``info``, as the simulator does."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, length: int, stop_reward: float = 2.0) -> None:
        self.num_envs, self.length, self.stop_reward = num_envs, length, stop_reward
        self.obs_layout = ObsLayout(num_candidates=2, num_topics=2, user_dim=length)
        space = gym.spaces.Box(0.0, 1.0, (self.obs_layout.size,), np.float32)
        self.single_observation_space = space
        self.single_action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.vector.utils.batch_space(space, num_envs)
        self.action_space = gym.spaces.MultiDiscrete([2] * num_envs)
        self.state = np.zeros(num_envs, dtype=np.int64)

    def observation(self, state: np.ndarray) -> np.ndarray:
        layout = self.obs_layout
        obs = np.zeros((len(state), layout.size), np.float32)
        obs[:, 0] = 1.0  # candidate 0 (continue): topic 0
        obs[:, layout.item_dim + 1] = 1.0  # candidate 1 (stop): topic 1
        obs[np.arange(len(state)), layout.items_size + state] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        self.state[:] = 0
        return self.observation(self.state), {}

    def step(self, actions):
        actions = np.asarray(actions)
        rewards = np.where(actions == 0, 1.0, self.stop_reward).astype(np.float32)
        following = self.state + 1
        terminated = (actions == 1) | (following == self.length)
        final_obs = self.observation(np.minimum(following, self.length - 1))
        self.state = np.where(terminated, 0, following)
        info = {"final_obs": final_obs, "_final_obs": terminated.copy()} if terminated.any() else {}
        return self.observation(self.state), rewards, terminated, np.zeros_like(terminated), info


def chain_q_values(length: int, gamma: float, stop_reward: float = 2.0) -> np.ndarray:
    """Q*(state, action) of :class:`ChainVecEnv` by backward induction, ``(length, 2)``."""
    q = np.zeros((length, 2))
    for state in reversed(range(length)):
        later = q[state + 1].max() if state + 1 < length else 0.0
        q[state] = 1.0 + gamma * later, stop_reward
    return q


def test_learns_discounted_returns_on_a_chain():
    """γ = 0.99 and the default target update, n-step and loss: the learned Q-values of a 16-state
    chain match the discounted returns Q* computed by backward induction (within 4 % + 0.1). Reward
    has to travel 16 steps back: with the former default target (Polyak τ = 0.005 once every
    1,000 user-steps) Q(start, continue) stayed at the one-step reward (≈ 1 of 15.7). The
    undiscounted return of the start state is 8 % above Q*, so the discount is learned too, not
    only the sum."""
    length, gamma = 16, 0.99
    env = ChainVecEnv(num_envs=2, length=length)
    agent = DQNAgent(env, seed=0, gamma=gamma, buffer_size=10_000, learning_starts=500)
    agent.learn(10_000)  # 5,000 vector steps: ≈ 25 lags of the default Polyak target
    learned = agent.q_values(env.observation(np.arange(length)))
    expected = chain_q_values(length, gamma)
    undiscounted = chain_q_values(length, 1.0)
    assert undiscounted[0, 0] > 1.08 * expected[0, 0]
    np.testing.assert_allclose(learned, expected, rtol=0.04, atol=0.1)
    assert (learned.argmax(axis=1) == expected.argmax(axis=1)).all()


@pytest.mark.parametrize("num_envs", [4, 16])
def test_default_target_update_is_polyak_every_vector_step(num_envs):
    """The documented default cadence: θ' ← τ·θ + (1 − τ)·θ' after every vector step (one
    training round), whatever the number of users, so the target lags the online net by ≈ 1/τ
    gradient steps; offline pre-training uses the same lag."""
    agent = DQNAgent(make_env(num_envs), seed=0, **FAST)
    tau = DQNConfig().tau
    assert agent.config.tau == tau < 1 and agent.target_update_gradient_steps == 1
    for _ in range(3):
        with torch.no_grad():
            for p in agent.q_net.parameters():
                p.add_(1.0)
        old = [p.clone() for p in agent.target_net.parameters()]
        agent.update()
        for o, t, q in zip(
            old, agent.target_net.parameters(), agent.q_net.parameters(), strict=True
        ):
            torch.testing.assert_close(t, o + tau * (q - o))
    # hard copies every 2,000 user-steps: every 125 vector steps of 16 users = 125 gradient steps
    hard = DQNAgent(make_env(16), seed=0, tau=1.0, target_update_interval=2_000, **FAST)
    assert hard.target_update_gradient_steps == 125


@pytest.mark.parametrize(  # the NEXT_STEP run doubles a > 30 s test: make test-slow
    "autoreset_mode", ["same_step", pytest.param("next_step", marks=pytest.mark.slow)]
)
def test_learns_to_beat_random_and_popularity(autoreset_mode):
    """Stationary users: DQN's last-window reward beats random and popularity on the same seed
    (the agent under either autoreset mode; the baselines on the SAME_STEP stream)."""
    num_envs, total, seed = 16, 48_000, 7
    vector_steps = total // num_envs
    window = vector_steps // 4

    def baseline_reward(policy) -> float:
        env = make_env(num_envs)
        obs, _ = env.reset(seed=seed)
        rewards = []
        for _ in range(vector_steps):
            obs, reward, *_ = env.step(policy(obs))
            rewards.append(reward.mean())
        return float(np.mean(rewards[-window:]))

    rng = np.random.default_rng(seed)
    layout = make_env(1).obs_layout
    random_reward = baseline_reward(lambda o: rng.integers(0, 20, num_envs))
    popularity_reward = baseline_reward(lambda o: layout.popularity(o).argmax(axis=1))

    agent = DQNAgent(make_env(num_envs, autoreset_mode=autoreset_mode), seed=seed, gamma=0.9, learning_starts=1_000,
                     exploration_fraction=0.2, target_update_interval=1_000,
                     buffer_size=50_000)  # fmt: skip
    rec = Recorder()
    agent.learn(total, rec)
    dqn_reward = float(rec.rewards[-window:].mean())  # online, still ε-greedy (ε = 0.05)
    best = max(random_reward, popularity_reward)
    print(f"dqn {dqn_reward:.3f} random {random_reward:.3f} popularity {popularity_reward:.3f}")
    assert dqn_reward > 1.2 * best, (dqn_reward, random_reward, popularity_reward)


# ---------------------------------------------------------------------------------- checkpoints
def test_save_load_gives_identical_greedy_actions(tmp_path):
    env = make_env(8)
    agent = DQNAgent(env, seed=3, dueling=True, **FAST)
    agent.learn(800)
    obs, _ = make_env(8).reset(seed=11)
    path = tmp_path / "ckpt" / "dqn.pt"
    agent.save(path)
    assert torch.load(path, weights_only=True)["config"]["dueling"] is True
    for loaded in (DQNAgent.load(path, env=make_env(8)), DQNAgent.load(path)):  # env optional
        np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))
        np.testing.assert_array_equal(loaded.q_values(obs), agent.q_values(obs))
        assert loaded.num_timesteps == 800 and loaded.config == agent.config
        assert len(loaded.replay) == 0  # not included by default


def test_load_without_env_rebuilds_the_long_term_layout(tmp_path):
    """On LongTerm-v0 a candidate carries long-term signals and an item embedding as well: a
    checkpoint must describe the whole layout, or an agent loaded without an env mis-splits the
    observation (fails to load, or scores the wrong features)."""
    env = gym.make_vec("recsim_env/LongTerm-v0", num_envs=4)
    agent = DQNAgent(env, seed=2, **FAST)
    agent.learn(400)
    path = tmp_path / "dqn.pt"
    agent.save(path)
    loaded = DQNAgent.load(path)  # no env
    assert loaded.layout == agent.layout and loaded.layout.item_signals
    obs, _ = gym.make_vec("recsim_env/LongTerm-v0", num_envs=4).reset(seed=9)
    np.testing.assert_array_equal(loaded.q_values(obs), agent.q_values(obs))
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))


@pytest.mark.parametrize("autoreset_mode", AUTORESET_MODES)
@pytest.mark.parametrize("overrides", [dict(), dict(n_step=3, dueling=True, tau=0.1)])
def test_resume_from_checkpoint_continues_exactly(tmp_path, overrides, autoreset_mode):
    """learn(N1) → save (with replay) + env.state_dict() → load both → learn(N2) equals
    learn(N1 + N2); under NEXT_STEP too (pending reset steps and skipped replay rows resume)."""
    hp = dict(seed=5, total_steps=2_400, target_update_interval=64, **FAST, **overrides)
    n1, n2 = 1_200, 800

    def make_env(n):
        return make_mode_env(
            n, autoreset_mode=autoreset_mode, max_session_steps=12, budget_min=2.0, budget_max=14.0
        )  # sessions that end at different steps: partial reset steps under NEXT_STEP

    full_agent = DQNAgent(make_env(4), **hp)
    full_rec = Recorder()
    full_agent.learn(n1 + n2, full_rec)

    agent = DQNAgent(make_env(4), **hp)
    agent.learn(n1)
    path = tmp_path / "dqn.pt"
    agent.save(path, include_replay=True)
    env_state = copy.deepcopy(agent.env.state_dict())
    del agent
    torch.manual_seed(1234)  # the global torch stream is restored by load

    env = make_env(4)
    env.load_state_dict(env_state)
    resumed = DQNAgent.load(path, env=env)
    rec = Recorder()
    resumed.learn(n2, rec)

    cut = next(i for i, t in enumerate(full_rec.transitions) if t.num_timesteps >= n1) + 1
    tail = full_rec.transitions[cut:]
    assert len(rec.losses) > 50
    assert rec.losses == [t.metrics["train/loss"] for t in tail if t.metrics]
    for a, b in zip(rec.transitions, tail, strict=True):
        np.testing.assert_array_equal(a.actions, b.actions)
    for p, q in zip(resumed.q_net.parameters(), full_agent.q_net.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(
        resumed.target_net.parameters(), full_agent.target_net.parameters(), strict=True
    ):
        assert torch.equal(p, q)
    assert resumed.num_timesteps == full_agent.num_timesteps
    if autoreset_mode == "same_step":
        assert resumed.num_timesteps == n1 + n2
    else:  # reset steps happened and were not counted
        assert any(t.info["reset_step"].any() for t in tail)
    assert resumed.epsilon == full_agent.epsilon


def test_resume_without_replay_keeps_learning(tmp_path):
    agent = DQNAgent(make_env(4), seed=0, total_steps=2_000, **FAST)
    agent.learn(400)
    agent.save(tmp_path / "dqn.pt")  # no replay: the buffer refills before training resumes
    env_state = agent.env.state_dict()
    env = make_env(4)
    env.load_state_dict(env_state)
    resumed = DQNAgent.load(tmp_path / "dqn.pt", env=env)
    assert len(resumed.replay) == 0 and resumed.observed_steps == 400
    rec = Recorder()
    resumed.learn(400, rec)
    assert rec.losses and np.isfinite(rec.losses).all()
