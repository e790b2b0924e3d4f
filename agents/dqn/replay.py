"""Preallocated numpy replay buffer over ``B`` parallel user streams, with n-step returns.

Storage is time-major: row ``t`` holds one vector step for all ``B`` users (``obs[t, e]`` is user
stream ``e`` at step ``t``), so adding a step is one slice assignment per array and every stream's
history is contiguous along the time axis. n-step returns are computed at sampling time by walking
``n`` rows forward in the sampled transition's own column (arrays over the batch, no per-user
Python loops): rewards are summed with ``γ^k`` until the window ends or the stream's episode ends.

* ``terminated`` (the session ended for real): no bootstrap after that step.
* ``truncated`` (the session was cut by the time limit): the window stops there but the target
  bootstraps from the stored final observation, ``γ^k·max Q(final_obs)``.

**Each observation is stored once.** The next observation of ``(t, e)`` is, almost always, the
observation of the following row ``obs[t + 1, e]``; it is stored separately only where it is not:
where a session ended (same-step autoreset: the following row holds the *next* user's first
observation, the true last one came in ``next_obs``) or where the caller's rows are not one
continuous stream (offline data re-cut into rows). ``add`` keeps the newest row's ``next_obs`` as
``pending`` and, when the following row arrives, compares the two: users whose rows differ get
their next observation copied into a FIFO side store (grown on demand, so any input is exact).
This halves the replay's memory and the bytes written per step against storing ``obs`` and
``next_obs`` side by side.

Under NEXT_STEP autoreset the step after an episode end is a *reset step* of that stream (action
ignored, reward 0): it is stored like any row, so that every stream stays one row per vector step
(its ``obs`` is the final observation, its next one the new user's first), and marked ``skip``:
it is never sampled, and no window reaches it (windows stop at the episode end before it).

A transition is sampled only once its ``n``-step window is complete (the newest ``n − 1`` rows wait),
so every target is an exact n-step (or episode-end) return. Observations are stored as float32,
actions as int64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

LAYOUT_VERSION = 2  # 1: obs and next_obs stored side by side (before the store-once layout)


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
        self.obs_dim = obs_dim
        self.n_step = n_step
        self.gamma = gamma
        self.capacity_rows = max(n_step, math.ceil(buffer_size / num_envs))
        shape = (self.capacity_rows, num_envs)
        self.obs = np.zeros((*shape, obs_dim), dtype=np.float32)
        self.actions = np.zeros((*shape, *action_shape), dtype=np.int64)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.episode_end = np.zeros(shape, dtype=bool)  # terminated | truncated
        self.skip = np.zeros(shape, dtype=bool)  # NEXT_STEP reset steps: never sampled
        self.any_skip = False  # some stored row has a skip (sampling then rejects them)
        # next observations that are not the following row's observation
        self.pending = np.zeros((num_envs, obs_dim), dtype=np.float32)  # newest row's next_obs
        self.side_index = np.full(shape, -1, dtype=np.int64)  # slot in side_obs, -1: next row
        side_capacity = max(num_envs, self.capacity_rows * num_envs // 32)
        self.side_obs = np.zeros((side_capacity, obs_dim), dtype=np.float32)
        self.side_row = np.full(side_capacity, -1, dtype=np.int64)  # absolute row of the owner
        self.side_head = 0  # next slot to write
        self.side_tail = 0  # oldest entry not yet released
        self.side_count = 0  # entries from tail to head (live, or dead but not yet released)
        self.rows_added = 0  # absolute row counter (the ring position is rows_added % capacity)
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

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored arrays (observations dominate)."""
        names = ("obs", "actions", "rewards", "terminated", "episode_end", "skip", "pending",
                 "side_index", "side_obs", "side_row")  # fmt: skip
        return sum(getattr(self, name).nbytes for name in names)

    # ------------------------------------------------------------------ write
    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        *,
        skip: np.ndarray | None = None,
    ) -> None:
        """Store one vector step (``next_obs``: the true final observation where a session ended;
        ``skip``: the streams whose step was a NEXT_STEP reset step, see the module doc)."""
        obs = np.asarray(obs, dtype=np.float32)
        if self.rows_added > 0:  # settle the previous row's next observations
            prev = (self.pos - 1) % self.capacity_rows
            moved = np.flatnonzero((self.pending != obs).any(axis=1))
            if moved.size:
                self._store_side(prev, moved)
        t = self.pos
        self.obs[t] = obs
        self.actions[t] = actions
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        np.logical_or(terminated, truncated, out=self.episode_end[t])
        if skip is not None or self.any_skip:
            self.skip[t] = False if skip is None else skip
            self.any_skip = self.any_skip or bool(self.skip[t].any())
        self.side_index[t] = -1
        self.pending[:] = next_obs
        self.rows_added += 1
        self.pos = (t + 1) % self.capacity_rows
        self.full = self.full or self.pos == 0

    def _store_side(self, row: int, streams: np.ndarray) -> None:
        """Copy ``pending[streams]`` (the next observations of ``(row, streams)``) to the side store.

        The side store is a FIFO ring in row order: an entry is live while its row is in the
        buffer. Dead entries at the tail are released only when room is needed; if the live ones
        still fill it, it grows (so the buffer is exact for any input)."""
        n = streams.size
        if self.side_count + n > len(self.side_row):
            self._release_side()
            if self.side_count + n > len(self.side_row):
                self._grow_side(self.side_count + n)
        capacity = len(self.side_row)
        slots = (self.side_head + np.arange(n)) % capacity
        self.side_obs[slots] = self.pending[streams]
        self.side_row[slots] = self.rows_added - 1  # the absolute number of ``row``
        self.side_index[row, streams] = slots
        self.side_head = int((self.side_head + n) % capacity)
        self.side_count += n

    def _release_side(self) -> None:
        """Drop tail entries whose rows are overwritten (by now or by the row being added)."""
        capacity = len(self.side_row)
        order = (self.side_tail + np.arange(self.side_count)) % capacity
        oldest_kept = self.rows_added - self.capacity_rows + 1
        dead = int(np.searchsorted(self.side_row[order], oldest_kept))  # rows are non-decreasing
        self.side_tail = int((self.side_tail + dead) % capacity)
        self.side_count -= dead

    def _grow_side(self, needed: int) -> None:
        """Reallocate the side store (at least doubled), entries in order from slot 0."""
        capacity = len(self.side_row)
        order = (self.side_tail + np.arange(self.side_count)) % capacity
        new_capacity = max(2 * capacity, needed)
        side_obs = np.zeros((new_capacity, self.obs_dim), dtype=np.float32)
        side_row = np.full(new_capacity, -1, dtype=np.int64)
        side_obs[: self.side_count] = self.side_obs[order]
        side_row[: self.side_count] = self.side_row[order]
        remap = np.full(capacity, -1, dtype=np.int64)
        remap[order] = np.arange(self.side_count)
        held = self.side_index >= 0
        self.side_index[held] = remap[self.side_index[held]]
        self.side_obs, self.side_row = side_obs, side_row
        self.side_tail, self.side_head = 0, self.side_count % new_capacity

    # ------------------------------------------------------------------ read
    def next_observations(self, rows: np.ndarray, streams: np.ndarray) -> np.ndarray:
        """The observation that followed ``(rows, streams)`` (true final one where a session ended)."""
        newest = (self.pos - 1) % self.capacity_rows
        out = self.obs[(rows + 1) % self.capacity_rows, streams]
        at_newest = np.flatnonzero(rows == newest)
        if at_newest.size:
            out[at_newest] = self.pending[streams[at_newest]]
        slots = self.side_index[rows, streams]
        aside = np.flatnonzero(slots >= 0)
        if aside.size:
            out[aside] = self.side_obs[slots[aside]]
        return out

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
        if self.any_skip:  # redraw reset steps: uniform over the real transitions
            t, e = self._redraw_skipped(t, e, n_rows, oldest, rng)
        if self.n_step == 1:
            return ReplayBatch(
                obs=self.obs[t, e],
                actions=self.actions[t, e],
                returns=self.rewards[t, e],
                next_obs=self.next_observations(t, e),
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
            next_obs=self.next_observations(last, e),
            terminated=terminated.astype(np.float32),
            discounts=discount.astype(np.float32),
        )

    def _redraw_skipped(self, t, e, n_rows: int, oldest: int, rng: np.random.Generator):
        bad = np.flatnonzero(self.skip[t, e])
        for _ in range(1000):  # at most one reset step per episode: few rounds
            if not bad.size:
                return t, e
            flat = rng.integers(0, n_rows * self.num_envs, size=bad.size)
            t[bad] = (oldest + flat // self.num_envs) % self.capacity_rows
            e[bad] = flat % self.num_envs
            bad = bad[self.skip[t[bad], e[bad]]]
        raise ValueError("cannot sample: (almost) every stored transition is a reset step")

    # ------------------------------------------------------------------ checkpoints
    _ROW_ARRAYS = ("obs", "actions", "rewards", "terminated", "episode_end", "side_index")
    _SIDE_ARRAYS = ("side_obs", "side_row")

    def state_dict(self) -> dict[str, Any]:
        """The stored rows, the side store and the write heads (plain arrays and ints)."""
        rows = self.rows
        state: dict[str, Any] = {
            name: getattr(self, name)[:rows].copy() for name in self._ROW_ARRAYS
        }
        state.update({name: getattr(self, name).copy() for name in self._SIDE_ARRAYS})
        if self.any_skip:  # only then (checkpoints of SAME_STEP runs are unchanged)
            state["skip"] = self.skip[:rows].copy()
        state.update(
            layout=LAYOUT_VERSION,
            pending=self.pending.copy(),
            side_head=self.side_head,
            side_tail=self.side_tail,
            side_count=self.side_count,
            rows_added=self.rows_added,
            pos=self.pos,
            full=self.full,
            capacity_rows=self.capacity_rows,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state.get("layout", 1)) != LAYOUT_VERSION:
            raise ValueError(
                f"replay layout {state.get('layout', 1)} cannot be loaded by layout "
                f"{LAYOUT_VERSION} (observations are now stored once): resume without the replay "
                f"or from a checkpoint written by this version"
            )
        if int(state["capacity_rows"]) != self.capacity_rows:
            raise ValueError(
                f"replay capacity mismatch: checkpoint has {state['capacity_rows']} rows, this "
                f"buffer {self.capacity_rows} (same buffer_size and num_envs are needed)"
            )
        for name in self._ROW_ARRAYS:
            arr = np.asarray(state[name])
            getattr(self, name)[: len(arr)] = arr
        for name in self._SIDE_ARRAYS:
            setattr(self, name, np.array(state[name]))
        self.pending[:] = np.asarray(state["pending"])
        self.skip[:] = False
        if "skip" in state:
            skip = np.asarray(state["skip"], dtype=bool)
            self.skip[: len(skip)] = skip
        self.any_skip = bool(self.skip.any())
        self.side_head = int(state["side_head"])
        self.side_tail = int(state["side_tail"])
        self.side_count = int(state["side_count"])
        self.rows_added = int(state["rows_added"])
        self.pos = int(state["pos"])
        self.full = bool(state["full"])
