"""Baseline agents: the action contract, the learning properties, exact statistics, persistence.

Learning properties compare agents on the same simulator seed (same world, same candidate draws)
against a reference measured in the same test, never a hard-coded score.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from recording import AUTORESET_MODES, live_values

import recsim_env  # registers the env ids; RecSimVectorEnv for evaluation
from agents import StepCallback
from agents.baselines import (
    DiscountedUCB,
    EpsilonGreedyAgent,
    GreedyAgent,
    LinearThompson,
    LinUCB,
    OracleAgent,
    PopularityAgent,
    RandomAgent,
    SlidingWindowUCB,
)

STATIONARY = "recsim_env/Stationary-v0"
ALL_AGENTS = [
    RandomAgent,
    PopularityAgent,
    GreedyAgent,
    EpsilonGreedyAgent,
    LinUCB,
    LinearThompson,
    SlidingWindowUCB,
    DiscountedUCB,
    OracleAgent,
]
LEARNERS = [
    GreedyAgent,
    EpsilonGreedyAgent,
    LinUCB,
    LinearThompson,
    SlidingWindowUCB,
    DiscountedUCB,
]


class Recorder(StepCallback):
    """Per vector step: mean reward and mean regret over the batch (and the transitions if asked)."""

    def __init__(self, keep: bool = False) -> None:
        self.rewards: list[float] = []
        self.regret: list[float] = []
        self.keep = keep
        self.transitions: list = []

    def on_step(self, transition) -> bool:
        info = transition.info  # NEXT_STEP reset steps are no user-steps: left out
        self.rewards.append(float(np.mean(live_values(transition.rewards, info))))
        self.regret.append(float(np.mean(live_values(info["regret"], info))))
        if self.keep:
            self.transitions.append(transition)
        return True


def make_env(num_envs: int, env_id: str = STATIONARY, **kwargs):
    kwargs.setdefault("autoreset_mode", "same_step")
    return gym.make_vec(env_id, num_envs=num_envs, **kwargs)


def run_stream(cls, *, num_envs, ticks, seed, env_kwargs=None, **hparams):
    """Learn online for ``ticks`` vector steps; per-tick mean reward and regret arrays."""
    env = make_env(num_envs, **(env_kwargs or {}))
    agent = cls(env, seed=seed, **hparams)
    rec = Recorder()
    agent.learn(ticks * num_envs, callback=rec)
    if (env_kwargs or {}).get("autoreset_mode", "same_step") == "same_step":
        assert len(rec.rewards) == ticks
    else:  # reset steps are no user-steps: the same user-steps take more vector steps
        assert len(rec.rewards) > ticks
    return np.array(rec.rewards), np.array(rec.regret)


def trained(cls, num_envs: int, ticks: int = 10, seed: int = 0, hparams=None, **env_kwargs):
    env = make_env(num_envs, **env_kwargs)
    agent = cls(env, seed=seed, **(hparams or {}))
    agent.learn(ticks * num_envs)
    obs, info = env.reset()  # new users, same world and clock
    return env, agent, obs, info


# ---------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("num_envs", [1, 4, 32])
@pytest.mark.parametrize("cls", ALL_AGENTS, ids=lambda c: c.__name__)
def test_act_shapes_dtypes_and_greedy_determinism(cls, num_envs):
    env, agent, obs, info = trained(cls, num_envs)
    num_candidates = env.single_action_space.n
    for explore in (False, True):
        actions = agent.act(obs, explore=explore, info=info)
        assert actions.shape == (num_envs,) and actions.dtype == np.int64
        assert np.all((actions >= 0) & (actions < num_candidates))
    env.step(actions)  # the env accepts them
    if cls is RandomAgent:  # random by design: reproducible from its seed instead
        a = RandomAgent(env, seed=7).act(obs, info=info)
        b = RandomAgent(env, seed=7).act(obs, info=info)
        np.testing.assert_array_equal(a, b)
    else:
        first = agent.act(obs, explore=False, info=info)
        np.testing.assert_array_equal(first, agent.act(obs, explore=False, info=info))


@pytest.mark.parametrize("cls", ALL_AGENTS, ids=lambda c: c.__name__)
def test_slate_mode_returns_distinct_candidates(cls):
    k = 3
    env, agent, obs, info = trained(cls, 4, slate_size=k)  # learning on slates runs too
    for explore in (False, True):
        slates = agent.act(obs, explore=explore, info=info)
        assert slates.shape == (4, k) and slates.dtype == np.int64
        ordered = np.sort(slates, axis=1)
        assert np.all(ordered[:, 1:] != ordered[:, :-1]), slates
        assert np.all((slates >= 0) & (slates < env.single_action_space.nvec[0]))
    env.step(slates)


def test_single_env_gets_unbatched_actions():
    env = gym.make(STATIONARY)
    obs, info = env.reset(seed=0)
    action = LinUCB(env, seed=0).act(obs, explore=True)
    assert (
        action.shape == () and action.dtype == np.int64 and env.action_space.contains(int(action))
    )
    assert OracleAgent(env).act(obs, info=info) == info["oracle_action"]


def test_oracle_needs_info():
    env = make_env(2)
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="info"):
        OracleAgent(env).act(obs)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (EpsilonGreedyAgent, {"epsilon": 1.5}),
        (GreedyAgent, {"target": "watch_time"}),
        (GreedyAgent, {"lr": 0.0}),
        (LinUCB, {"reg": 0.0}),
        (LinUCB, {"alpha": -1.0}),
        (SlidingWindowUCB, {"window": 0}),
        (DiscountedUCB, {"discount": 0.0}),
    ],
)
def test_invalid_hyperparameters_are_rejected(cls, kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        cls(make_env(1), **kwargs)


def test_hydra_instantiate_builds_agents():
    from hydra.utils import instantiate

    env = make_env(2)
    cfg = {"_target_": "agents.baselines.SlidingWindowUCB", "window": 64, "alpha": 0.5, "seed": 3}
    agent = instantiate(cfg, env=env)
    assert isinstance(agent, SlidingWindowUCB)
    assert agent.hyperparameters() == {
        "window": 64,
        "alpha": 0.5,
        "reg": 1.0,
        "user_features": True,
        "seed": 3,
    }


def test_slate_feedback_credits_the_clicked_slot_or_the_whole_slate():
    env = make_env(3, slate_size=2)
    obs, _ = env.reset(seed=0)
    features = LinUCB(env).features
    slates = np.array([[0, 1], [2, 3], [4, 5]])
    rewards = np.array([0.0, 1.5, 2.0])
    # with the clicked slot reported (-1: no click): one pair per slot
    x, y = features.feedback(obs, slates, rewards, {"clicked_position": np.array([-1, 1, 0])})
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, 1.5, 2.0, 0.0])
    np.testing.assert_array_equal(x, features.chosen(obs, slates).reshape(6, -1))
    # without it: one pair per user, the slate's summed contexts and its reward
    x, y = features.feedback(obs, slates, rewards, {})
    np.testing.assert_array_equal(y, rewards)
    np.testing.assert_allclose(x, features.chosen(obs, slates).sum(axis=1))
    single = features.chosen(obs, slates[:, 0])
    np.testing.assert_array_equal(single, features.all_candidates(obs)[np.arange(3), slates[:, 0]])


# ---------------------------------------------------------------------------------- exact statistics
@pytest.mark.parametrize(
    ("cls", "hparams"),
    [
        (LinUCB, {}),
        (SlidingWindowUCB, {"window": 5}),  # smaller than one batch
        (SlidingWindowUCB, {"window": 50}),  # wraps several times
        (DiscountedUCB, {"discount": 0.98}),
    ],
    ids=["linucb", "sw5", "sw50", "discounted"],
)
def test_batched_statistics_equal_a_weighted_ridge_fit(cls, hparams):
    """The rank-B (up/down-dated, discounted) statistics give exactly the ridge regression on the
    observations they are meant to weight: all, the last ``window``, or ``discount ** age``."""
    num_envs, ticks = 7, 30
    env = make_env(num_envs)
    agent = cls(env, seed=0, alpha=0.5, **hparams)
    rec = Recorder(keep=True)
    agent.learn(ticks * num_envs, callback=rec)
    pairs = [agent.features.feedback(t.obs, t.actions, t.rewards, t.info) for t in rec.transitions]
    x = np.concatenate([p[0] for p in pairs])
    y = np.concatenate([p[1] for p in pairs])
    age = (ticks - 1 - np.repeat(np.arange(ticks), num_envs)) * num_envs  # user-steps since seen
    if cls is SlidingWindowUCB:
        weights = (np.arange(len(y)) >= len(y) - hparams["window"]).astype(float)
    elif cls is DiscountedUCB:
        weights = hparams["discount"] ** age
    else:
        weights = np.ones(len(y))
    design = (x * weights[:, None]).T @ x + agent.reg * np.eye(x.shape[1])
    expected = np.linalg.solve(design, (x * weights[:, None]).T @ y)
    np.testing.assert_allclose(agent.theta, expected, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------- learning
def evaluate(agent, world, *, ticks: int = 50, num_envs: int = 32, seed: int = 123) -> float:
    """Mean reward of ``agent``'s greedy policy on evaluation users of ``world`` (same users for
    every agent evaluated with the same seed)."""
    env = recsim_env.RecSimVectorEnv(num_envs=num_envs, world=world)
    obs, info = env.reset(seed=seed)
    total = 0.0
    for _ in range(ticks):
        obs, rewards, _, _, info = env.step(agent.act(obs, explore=False, info=info))
        total += float(np.mean(rewards))
    return total / ticks


@pytest.mark.parametrize("autoreset_mode", AUTORESET_MODES)
@pytest.mark.parametrize("cls", [LinUCB, LinearThompson], ids=lambda c: c.__name__)
def test_linear_bandits_beat_random(cls, autoreset_mode):
    """Online (last window of the stream) and as a learned greedy policy; the latter also beats
    the same agent untrained, so the margin comes from learning, not from the form of the score.
    Under both autoreset modes (the random baseline: SAME_STEP, the same users)."""
    num_envs, ticks, seed = 32, 300, 0
    env = make_env(num_envs, autoreset_mode=autoreset_mode)
    agent = cls(env, seed=seed)
    rec = Recorder()
    agent.learn(ticks * num_envs, callback=rec)
    random_rewards, random_regret = run_stream(
        RandomAgent, num_envs=num_envs, ticks=ticks, seed=seed
    )
    last = slice(-100, None)
    online, online_random = np.mean(rec.rewards[last]), random_rewards[last].mean()
    msg = f"{cls.__name__}: online reward {online:.4f} vs random {online_random:.4f}"
    assert online > online_random, msg
    assert np.mean(rec.regret[last]) < random_regret[last].mean(), msg

    greedy = evaluate(agent, env.world)
    untrained = evaluate(cls(env, seed=seed), env.world)
    random_policy = evaluate(RandomAgent(env, seed=seed), env.world)
    msg = f"{cls.__name__}: greedy {greedy:.4f}, untrained {untrained:.4f}, random {random_policy:.4f}"
    assert greedy > random_policy and greedy > untrained, msg


@pytest.mark.parametrize("autoreset_mode", AUTORESET_MODES)
def test_oracle_beats_every_learner(autoreset_mode):
    kwargs = {
        "num_envs": 32,
        "ticks": 200,
        "seed": 1,
        "env_kwargs": {"autoreset_mode": autoreset_mode},
    }
    oracle_rewards, oracle_regret = run_stream(OracleAgent, **kwargs)
    assert np.all(oracle_regret == 0.0)  # it really plays the argmax of the expected reward
    for cls in [RandomAgent, PopularityAgent, *LEARNERS]:
        rewards, regret = run_stream(cls, **kwargs)
        assert oracle_rewards.mean() > rewards.mean(), (cls.__name__, rewards.mean())
        assert regret.mean() > 0.0


def test_nonstationary_ucb_recovers_faster_after_a_change_point():
    """One abrupt jump of the population's interests at tick T. Recovery = the mean reward (and
    dynamic regret) in the ``post`` ticks after the jump, pooled over two seeds. The forgetting
    variants must do better than stationary LinUCB there, and their advantage must come from the
    change: it must exceed their advantage (if any) in the ``post`` ticks before it."""
    change, post, num_envs, seeds = 1000, 300, 32, (0, 1)
    env_kwargs = {"drift": [{"schedule": "changepoints", "times": [change], "process": "jump"}]}

    def windows(cls, **hparams):
        before, after, regret_after = [], [], []
        for seed in seeds:
            r, g = run_stream(
                cls,
                num_envs=num_envs,
                ticks=change + post,
                seed=seed,
                env_kwargs=env_kwargs,
                **hparams,
            )
            # transition i steps the clock from i to i + 1: the jump fires in transition T - 1,
            # after its action was chosen, so transitions T, T + 1, ... act in the new world
            before.append(r[change - post : change].mean())
            after.append(r[change:].mean())
            regret_after.append(g[change:].mean())
        return np.mean(before), np.mean(after), np.mean(regret_after)

    lin_before, lin_after, lin_regret = windows(LinUCB)
    for cls, hparams in [
        (SlidingWindowUCB, {"window": 2000}),
        (DiscountedUCB, {"discount": 0.999}),
    ]:
        before, after, regret = windows(cls, **hparams)
        msg = (
            f"{cls.__name__}: reward before/after {before:.4f}/{after:.4f}, regret after {regret:.4f}"
            f"; LinUCB {lin_before:.4f}/{lin_after:.4f}, regret after {lin_regret:.4f}"
        )
        assert after > lin_after, msg
        assert regret < lin_regret, msg
        assert after - lin_after > before - lin_before, msg


# ---------------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("cls", ALL_AGENTS, ids=lambda c: c.__name__)
def test_save_load_restores_learned_state(cls, tmp_path):
    # a sliding window that has wrapped, so that the next batch evicts rows
    hparams = {"window": 100} if cls is SlidingWindowUCB else {}
    env, agent, obs, info = trained(cls, 8, ticks=20, hparams=hparams)
    path = tmp_path / "agent.pkl"
    agent.save(path)
    loaded = cls.load(path, env=env)
    assert loaded.hyperparameters() == agent.hyperparameters()
    assert loaded.num_timesteps == agent.num_timesteps == 160
    np.testing.assert_array_equal(loaded.act(obs, info=info), agent.act(obs, info=info))
    # the RNG continues where it was: exploration is identical too
    np.testing.assert_array_equal(
        loaded.act(obs, explore=True, info=info), agent.act(obs, explore=True, info=info)
    )
    if cls in LEARNERS:
        scores = agent.scores(obs, explore=False, info=info)
        np.testing.assert_array_equal(loaded.scores(obs, explore=False, info=info), scores)
        fresh = cls(env, **agent.hyperparameters())
        assert not np.allclose(fresh.scores(obs, explore=False, info=info), scores)
        # the statistics behind the model (windows, discounted sums) were restored as well
        actions = agent.act(obs, info=info)
        next_obs, rewards, term, trunc, next_info = env.step(actions)
        for a in (agent, loaded):
            a.observe(obs, actions, rewards, next_obs, term, trunc, next_info)
        np.testing.assert_allclose(
            loaded.scores(next_obs, explore=True, info=next_info),
            agent.scores(next_obs, explore=True, info=next_info),
            rtol=1e-12,
        )
