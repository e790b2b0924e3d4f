"""The optional click-model contract: agents that predict click probabilities say so.

Recommender practice judges a click model by AUC, log-loss, accuracy, precision, recall and F1 of
its predictions on the clicks users actually made (``experiments.analysis.click_metrics``). Only
some agents have such a model, so the contract is optional and explicit:

.. code-block:: python

    def click_probability(self, obs, *, info=None) -> np.ndarray | None: ...

- ``obs`` is a batch ``(B, obs_dim)``; the result is ``(B, C)`` float64 in ``[0, 1]``: the agent's
  predicted probability that the user clicks each candidate if it is shown (alone, in slate mode);
- ``info`` is the info that came with ``obs`` (only the oracle reads it: its "prediction" is the
  ground truth ``info["click_prob"]``, the ceiling any click model can reach);
- ``None`` means "no click model in this configuration", e.g. a linear bandit whose reward is the
  engagement (its scores estimate expected watch time, not a probability). The evaluation then
  reports no click metric for the agent: never a made-up value.

Which agents have one (see each class): ``GreedyAgent``/``EpsilonGreedyAgent`` (their logistic
model; with ``target="reward"`` only when the env reward is the click), the linear bandits (their
ridge estimate θ̂·φ clipped to [0, 1], when the env reward is the click), ``DQNAgent`` (its Q-values
clipped to [0, 1], when the env reward is the click and ``gamma == 0`` so that Q estimates the
immediate click rate rather than a return), ``OracleAgent`` (the ground truth), ``FrozenAgent``
(its inner agent's). Agents without the method (random, popularity, SB3 adapters, ...) get no key.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CLICK = "click"


def env_reward_kind(env: Any) -> str | None:
    """The simulator's ``reward`` setting (``"click"`` or ``"engagement"``) behind ``env``.

    Walks gymnasium wrappers (``.env``), SB3 VecEnv wrappers (``.venv``) and
    ``recsim_env.sb3_vec_env.RecSimVecEnv`` (``.vector_env``) down to a recsim env's ``config``. ``None`` when it cannot be found (an ``EnvSpec`` rebuilt from a checkpoint without
    an env, a foreign env): callers then have no basis to call their scores click probabilities.
    """
    seen = set()
    current = env
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        config = getattr(current, "__dict__", {}).get("config")
        reward = getattr(config, "reward", None)
        if isinstance(reward, str):
            return reward
        current = (
            getattr(current, "venv", None)
            or getattr(current, "vector_env", None)
            or getattr(current, "env", None)
        )
    return None


def as_click_probability(estimate: np.ndarray) -> np.ndarray:
    """A regression estimate of ``E[click]`` as a probability: float64, clipped to ``[0, 1]``."""
    return np.clip(np.asarray(estimate, dtype=np.float64), 0.0, 1.0)
