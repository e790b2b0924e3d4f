"""Helpers the Q-learner tests share (imported as ``from recording import ...``: pytest puts this
folder on ``sys.path``, it has no ``__init__.py``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import recsim_env  # noqa: F401  (registers the ids)
from agents.base import StepCallback, Transition

ENV_ID = "recsim_env/Stationary-v0"


def make_env(num_envs: int = 4, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec(ENV_ID, num_envs=num_envs, **kwargs)


class Recorder(StepCallback):
    """Every transition of a ``learn`` call."""

    def __init__(self) -> None:
        self.transitions: list[Transition] = []

    def on_step(self, transition: Transition) -> bool:
        self.transitions.append(transition)
        return True

    @property
    def rewards(self) -> np.ndarray:
        return np.array([t.rewards.mean() for t in self.transitions])

    @property
    def losses(self) -> list[float]:
        return [t.metrics["train/loss"] for t in self.transitions if t.metrics]
