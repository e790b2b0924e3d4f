"""Helpers the Q-learner tests share (imported as ``from recording import ...``: pytest puts this
folder on ``sys.path``, it has no ``__init__.py``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import recsim_env  # noqa: F401  (registers the ids)
from agents.base import StepCallback, Transition, reset_rows

ENV_ID = "recsim_env/Stationary-v0"


# Both autoreset modes of the native env (recsim_env/core_autoreset.py): the learning tests run under
# each; the other tests keep SAME_STEP (the runner's default), whose streams they pin.
AUTORESET_MODES = ("same_step", "next_step")


def make_env(num_envs: int = 4, **kwargs) -> gym.vector.VectorEnv:
    kwargs.setdefault("autoreset_mode", "same_step")
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
        """Mean reward of each vector step over its user-steps (NEXT_STEP reset steps left out)."""
        return np.array([live_values(t.rewards, t.info).mean() for t in self.transitions])

    @property
    def losses(self) -> list[float]:
        return [t.metrics["train/loss"] for t in self.transitions if t.metrics]


def live_values(values: np.ndarray, info: dict) -> np.ndarray:
    """``values`` of the rows that were user-steps (all of them under SAME_STEP)."""
    mask = reset_rows(info)
    return np.asarray(values) if mask is None else np.asarray(values)[~mask]
