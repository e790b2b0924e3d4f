"""Preallocated numpy replay buffer over ``B`` parallel user streams, with n-step returns.

Storage is time-major: row ``t`` holds one vector step for all ``B`` users (``obs[t, e]`` is user
stream ``e`` at step ``t``), so adding a step is one slice assignment per array and every stream's
history is contiguous along the time axis. n-step returns are computed at sampling time by walking
``n`` rows forward in the sampled transition's own column (arrays over the batch, no per-user
Python loops): rewards are summed with ``γ^k`` until the window ends or the stream's episode ends.

* ``terminated`` (the session ended for real): no bootstrap after that step.
* ``truncated`` (the session was cut by the time limit): the window stops there but the target
  bootstraps from the stored final observation, ``γ^k·max Q(final_obs)``.

A transition is sampled only once its ``n``-step window is complete (the newest ``n − 1`` rows wait),
so every target is an exact n-step (or episode-end) return. Observations are stored as float32,
actions as int64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ReplayBatch:
    """``target = returns + discounts · (1 − terminated) · max_a Q(next_obs, a)``."""

    obs: np.ndarray  # (b, obs_dim) float32
    actions: np.ndarray  # (b,) or (b, k) int64
    returns: np.ndarray  # (b,) float32: discounted reward sum over the window
    next_obs: np.ndarray  # (b, obs_dim) float32: observation after the window
    terminated: np.ndarray  # (b,) float32: 1 where the window ended in a termination
    discounts: np.ndarray  # (b,) float32: γ^k, k = steps in the window


class ReplayBuffer:
    """Ring buffer of ``capacity_rows`` vector steps of ``num_envs`` streams.

    ``buffer_size`` (in transitions) is rounded up to a whole number of rows:
    ``capacity_rows = max(n_step, ceil(buffer_size / num_envs))``.
    """

    def __init__(
        self,
        buffer_size: int,
        num_envs: int,
        obs_dim: int,
        action_shape: tuple[int, ...] = (),
        n_step: int = 1,
        gamma: float = 0.99,
    ) -> None:
        self.num_envs = num_envs
        self.n_step = n_step
        self.gamma = gamma
        self.capacity_rows = max(n_step, math.ceil(buffer_size / num_envs))
        shape = (self.capacity_rows, num_envs)
        self.obs = np.zeros((*shape, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((*shape, obs_dim), dtype=np.float32)
        self.actions = np.zeros((*shape, *action_shape), dtype=np.int64)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.episode_end = np.zeros(shape, dtype=bool)  # terminated | truncated
        self.pos = 0  # next row to write
        self.full = False

    # ------------------------------------------------------------------ size
    @property
    def rows(self) -> int:
        """Rows written and not yet overwritten."""
        return self.capacity_rows if self.full else self.pos

    def __len__(self) -> int:
        """Transitions stored."""
        return self.rows * self.num_envs

    @property
    def sampleable(self) -> int:
        """Transitions whose n-step window is complete."""
        return max(0, self.rows - (self.n_step - 1)) * self.num_envs

    # ------------------------------------------------------------------ write / read
    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Store one vector step (``next_obs``: the true final observation where a session ended)."""
        t = self.pos
        self.obs[t] = obs
        self.next_obs[t] = next_obs
        self.actions[t] = actions
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        np.logical_or(terminated, truncated, out=self.episode_end[t])
        self.pos = (t + 1) % self.capacity_rows
        self.full = self.full or self.pos == 0

    def sample(
        self, batch_size: int, rng: np.random.Generator, *, flat_indices: np.ndarray | None = None
    ) -> ReplayBatch:
        """Uniform sample (with replacement) of transitions whose window is complete.

        ``flat_indices`` (in ``[0, sampleable)``, row-major from the oldest complete row) replaces
        the uniform draw, for samplers with other preferences (e.g. recent experience)."""
        n_rows = self.rows - (self.n_step - 1)
        if n_rows <= 0:
            raise ValueError(
                f"cannot sample: {self.rows} rows stored, n_step={self.n_step} needs at least "
                f"{self.n_step}"
            )
        if flat_indices is None:
            flat = rng.integers(0, n_rows * self.num_envs, size=batch_size)
        else:
            flat = np.asarray(flat_indices, dtype=np.int64)
            batch_size = len(flat)
        oldest = self.pos if self.full else 0
        t = (oldest + flat // self.num_envs) % self.capacity_rows
        e = flat % self.num_envs
        if self.n_step == 1:
            return ReplayBatch(
                obs=self.obs[t, e],
                actions=self.actions[t, e],
                returns=self.rewards[t, e],
                next_obs=self.next_obs[t, e],
                terminated=self.terminated[t, e].astype(np.float32),
                discounts=np.full(batch_size, self.gamma, dtype=np.float32),
            )
        returns = np.zeros(batch_size, dtype=np.float64)
        discount = np.ones(batch_size, dtype=np.float64)
        alive = np.ones(batch_size, dtype=bool)  # window still open
        last = t.copy()  # row of the window's last step
        terminated = np.zeros(batch_size, dtype=bool)
        for k in range(self.n_step):
            row = (t + k) % self.capacity_rows
            returns += np.where(alive, discount * self.rewards[row, e], 0.0)
            np.copyto(last, row, where=alive)
            terminated |= alive & self.terminated[row, e]
            discount = np.where(alive, discount * self.gamma, discount)
            alive &= ~self.episode_end[row, e]
        return ReplayBatch(
            obs=self.obs[t, e],
            actions=self.actions[t, e],
            returns=returns.astype(np.float32),
            next_obs=self.next_obs[last, e],
            terminated=terminated.astype(np.float32),
            discounts=discount.astype(np.float32),
        )

    # ------------------------------------------------------------------ checkpoints
    _ARRAYS = ("obs", "next_obs", "actions", "rewards", "terminated", "episode_end")

    def state_dict(self) -> dict[str, Any]:
        """The stored rows (only those written, oldest first is not required) and the write head."""
        rows = self.rows
        state: dict[str, Any] = {name: getattr(self, name)[:rows].copy() for name in self._ARRAYS}
        state.update(pos=self.pos, full=self.full, capacity_rows=self.capacity_rows)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity_rows"]) != self.capacity_rows:
            raise ValueError(
                f"replay capacity mismatch: checkpoint has {state['capacity_rows']} rows, this "
                f"buffer {self.capacity_rows} (same buffer_size and num_envs are needed)"
            )
        for name in self._ARRAYS:
            arr = np.asarray(state[name])
            getattr(self, name)[: len(arr)] = arr
        self.pos = int(state["pos"])
        self.full = bool(state["full"])
