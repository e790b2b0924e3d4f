"""SB3 PPO/A2C with ``network=candidate``: per-candidate logits from our shared scorer
(agents/sb3/actor_critic.py), SB3's own learning, save and load."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

import recsim_env  # noqa: F401  (registers the ids)
from agents.sb3 import SB3A2C, SB3PPO
from agents.sb3.actor_critic import CandidateActorCriticPolicy
from recsim_env.observation import get_obs_layout

ENV_ID = "recsim_env/DriftingUsers-v0"
TINY = {
    SB3PPO: dict(hidden_sizes=[32, 32], n_steps=16, batch_size=32, n_epochs=2),
    SB3A2C: dict(hidden_sizes=[32, 32], n_steps=5, log_interval=5),
}
CLASSES = list(TINY)


def vector_env(num_envs: int = 4, env_id: str = ENV_ID) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=num_envs, max_session_steps=15)


def logits_and_values(agent, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    policy = agent.model.policy
    policy.set_training_mode(False)
    obs_t, _ = policy.obs_to_tensor(obs)
    with torch.no_grad():
        logits = policy.get_distribution(obs_t).distribution.logits
        values = policy.predict_values(obs_t)
    return logits.numpy(), values.numpy()[:, 0]


def permute_candidates(obs: np.ndarray, layout, perm: np.ndarray) -> np.ndarray:
    items = obs[:, : layout.items_size].reshape(len(obs), layout.num_candidates, layout.item_dim)
    return np.concatenate(
        [items[:, perm].reshape(len(obs), -1), obs[:, layout.items_size :]], axis=1
    )


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_logits_are_per_candidate_and_permutation_equivariant(cls):
    env = vector_env()
    agent = cls(env, seed=0, network="candidate", **TINY[cls])
    assert isinstance(agent.model.policy, CandidateActorCriticPolicy)
    agent.learn(400)  # trained weights, not only the near-uniform initial ones
    layout = get_obs_layout(env)
    obs, _ = vector_env(num_envs=16).reset(seed=3)
    logits, values = logits_and_values(agent, obs)
    assert logits.shape == (16, layout.num_candidates) and values.shape == (16,)
    assert np.ptp(logits, axis=1).max() > 1e-4  # the candidates are told apart

    perm = np.random.default_rng(0).permutation(layout.num_candidates)
    permuted_logits, permuted_values = logits_and_values(
        agent, permute_candidates(obs, layout, perm)
    )
    np.testing.assert_allclose(permuted_logits, logits[:, perm], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(permuted_values, values, rtol=1e-5, atol=1e-5)  # a pooled summary
    np.testing.assert_array_equal(agent.act(obs), logits.argmax(axis=1))
    np.testing.assert_allclose(agent.scores(obs), logits, rtol=1e-6)

    # the default (SB3's MlpPolicy) has one logit per slot: permuting candidates does not permute them
    mlp = cls(vector_env(), seed=0, **TINY[cls])
    assert type(mlp.model.policy) is ActorCriticPolicy
    mlp.learn(400)
    mlp_logits, _ = logits_and_values(mlp, obs)
    mlp_permuted, _ = logits_and_values(mlp, permute_candidates(obs, layout, perm))
    assert not np.allclose(mlp_permuted, mlp_logits[:, perm], atol=1e-5)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_zip_saves_and_loads_the_candidate_policy(cls, tmp_path):
    agent = cls(vector_env(), seed=1, network="candidate", **TINY[cls])
    agent.learn(400)
    path = tmp_path / "agent.ckpt"
    agent.save(path)
    obs, _ = vector_env(num_envs=16).reset(seed=5)
    logits, values = logits_and_values(agent, obs)
    for loaded in (
        cls.load(path, trust_checkpoints=True),
        cls.load(path, env=vector_env(), trust_checkpoints=True),
    ):
        assert isinstance(loaded.model.policy, CandidateActorCriticPolicy)
        assert loaded.hyperparameters() == agent.hyperparameters()
        assert loaded.hyperparameters()["network"] == "candidate"
        loaded_logits, loaded_values = logits_and_values(loaded, obs)
        np.testing.assert_array_equal(loaded_logits, logits)
        np.testing.assert_array_equal(loaded_values, values)
        np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))
    loaded.learn(64)  # SB3's optimizer state came back with the policy: training continues
    assert loaded.num_timesteps >= agent.num_timesteps + 64


def test_the_scorer_is_ours_and_no_linear_map_mixes_the_slots():
    agent = SB3PPO(vector_env(), seed=0, network="candidate", **TINY[SB3PPO])
    policy = agent.model.policy
    assert isinstance(policy.action_net, torch.nn.Identity)
    from agents.qlearning.network import CandidateQNetwork

    assert isinstance(policy.mlp_extractor.scorer, CandidateQNetwork)
    # every trainable parameter is in the optimizer (the discarded action_net's are not)
    in_optimizer = {id(p) for group in policy.optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in policy.parameters()}
    # a near-uniform initial policy, as SB3's MlpPolicy starts
    fresh = SB3PPO(vector_env(), seed=0, network="candidate", **TINY[SB3PPO])
    obs, _ = vector_env(num_envs=16).reset(seed=3)
    logits, _ = logits_and_values(fresh, obs)
    assert np.abs(logits - np.log(1 / 20)).max() < 0.1


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [("network", "cnn", "'mlp', 'candidate'"), ("network", 1, "'mlp', 'candidate'")],
)
def test_invalid_network_names_key_value_and_allowed(cls, key, value, allowed):
    with pytest.raises(ValueError, match="allowed") as err:
        cls(vector_env(), **{key: value})
    message = str(err.value)
    assert f"{cls.__name__}.{key}={value!r}" in message and allowed in message


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_candidate_needs_a_hidden_layer(cls):
    with pytest.raises(ValueError, match="allowed") as err:
        cls(vector_env(), network="candidate", hidden_sizes=[])
    assert f"{cls.__name__}.hidden_sizes=[]" in str(err.value)


def test_ppo_candidate_learns_faster_than_the_slot_mlp_on_stationary_users():
    """Same budget, seed and hyperparameters; only the policy network differs. The baseline (SB3's
    MlpPolicy, one logit per slot) is measured here, on the same evaluation users."""
    eval_users, eval_steps = 64, 100

    def per_user_reward(agent) -> np.ndarray:
        env = gym.make_vec("recsim_env/Stationary-v0", num_envs=eval_users)
        obs, _ = env.reset(seed=123)
        total = np.zeros(eval_users)
        for _ in range(eval_steps):
            obs, rewards, *_ = env.step(agent.act(obs))
            total += rewards
        return total / eval_steps

    rewards = {}
    for network in ("mlp", "candidate"):
        agent = SB3PPO(
            gym.make_vec("recsim_env/Stationary-v0", num_envs=16),
            seed=0,
            gamma=0.5,
            network=network,
            n_steps=32,
            batch_size=128,
            n_epochs=4,
        )
        agent.learn(BUDGET_STATIONARY)
        rewards[network] = per_user_reward(agent)
    diff = rewards["candidate"].mean() - rewards["mlp"].mean()
    stderr = np.sqrt(
        rewards["candidate"].var(ddof=1) / eval_users + rewards["mlp"].var(ddof=1) / eval_users
    )
    assert diff > 3 * stderr, ({k: v.mean() for k, v in rewards.items()}, stderr)


BUDGET_STATIONARY = 12_000  # user-steps per network
