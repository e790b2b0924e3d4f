"""The env's own episode statistics, for the client tests to compare theirs with (imported as
``from episodes import ...``: pytest puts this folder on ``sys.path``; it has no ``__init__.py``).

Every client test drives the env with :func:`policy`, a deterministic function of the observation,
so that the client's episodes and the env's own are the same episodes whatever the client does
between them (TorchRL resets an ended env without asking the policy; a NEXT_STEP vector env asks
for an action it ignores)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import recsim_env  # noqa: F401  (registers the ids)
from recsim_env.observation import ObsLayout

CLIENT_KWARGS = {"max_session_steps": 8, "num_items": 200, "lifetime_ticks": 30}


def policy(obs: np.ndarray, layout: ObsLayout) -> np.ndarray:
    """The most popular candidate of each observation row (``(B, obs_dim)`` → ``(B,)``)."""
    return layout.popularity(np.atleast_2d(obs)).argmax(axis=1)


def own_episodes(
    env_id: str, seed: int, episodes: int, user_index: int = 0, **kwargs
) -> list[tuple[float, int]]:
    """``(return, length)`` of the first ``episodes`` episodes of user stream ``user_index``,
    from the native vector env's ``final_info`` (one user, NEXT_STEP: exactly the single env)."""
    kwargs = {**CLIENT_KWARGS, **kwargs}
    env = gym.make_vec(env_id, num_envs=1, user_index=user_index, **kwargs)
    layout = env.unwrapped.obs_layout
    obs, _ = env.reset(seed=seed)
    out: list[tuple[float, int]] = []
    while len(out) < episodes:
        obs, _, term, trunc, info = env.step(policy(obs, layout))
        if term[0] or trunc[0]:
            final = info["final_info"]
            out.append((float(final["episode_return"][0]), int(final["episode_length"][0])))
    env.close()
    return out


def episodes_of(rewards: np.ndarray, dones: np.ndarray) -> list[tuple[float, int]]:
    """``(return, length)`` of the complete episodes in one stream of step rewards and end flags."""
    out, total, length = [], 0.0, 0
    for r, d in zip(np.asarray(rewards).reshape(-1), np.asarray(dones).reshape(-1), strict=True):
        total += float(r)
        length += 1
        if d:
            out.append((total, length))
            total, length = 0.0, 0
    return out


def assert_same_episodes(theirs: list, ours: list, what: str) -> None:
    """The client's episodes equal the env's (returns to float32 precision, lengths exactly)."""
    assert len(theirs) >= 2, f"{what}: too few complete episodes to compare ({len(theirs)})"
    ours = ours[: len(theirs)]
    assert [n for _, n in theirs] == [n for _, n in ours], f"{what}: lengths {theirs} vs {ours}"
    np.testing.assert_allclose(
        [r for r, _ in theirs], [r for r, _ in ours], rtol=1e-5, atol=1e-5, err_msg=what
    )
