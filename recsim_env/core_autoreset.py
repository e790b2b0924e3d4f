"""Autoreset modes of the batched core (a mixin of :class:`recsim_env.core.BatchedCore`).

* ``same_step`` (SB3's convention, the vector env's historical one): a user whose session ends at
  step ``t`` is replaced in the same step; the returned observation row is already the next user's
  first one and ``info["final_obs"]`` holds the true last one.
* ``next_step`` (Gymnasium's convention): the ended row returns its true last observation; the
  next vector step is a *reset step* for that row: its action is ignored, nothing happens to any
  user in it (reward 0, ``terminated = truncated = False``, no click, no regret), and it returns
  the next user's first observation. ``info["reset_step"]`` marks those rows (every step), so that
  learners and metrics skip them.

The world is shared by all rows, so a reset step that comes with other rows' real steps is one tick
of the world like any other (the next user arrives one tick later than with ``same_step``). A
vector step in which *every* row is a reset step serves nobody: it does not advance the world or the
per-user random streams, and equals ``reset()`` of the single env; so with ``num_envs=1`` (or when
all sessions end together) row ``i`` is exactly ``RecSimEnv(user_index=i)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recsim_env.validation import ConfigError

AUTORESET_MODES = ("next_step", "same_step")


def autoreset_name(mode: Any) -> str:
    """``"next_step"`` / ``"same_step"`` from a string or a ``gymnasium.vector.AutoresetMode``."""
    value = getattr(mode, "value", mode)  # AutoresetMode.NEXT_STEP.value == "NextStep"
    name = value.lower().replace("_", "") if isinstance(value, str) else None
    if name in ("nextstep", "samestep"):
        return f"{name[:4]}_step"
    raise ConfigError(
        f"invalid autoreset_mode={mode!r} (allowed: AutoresetMode.NEXT_STEP, "
        f"AutoresetMode.SAME_STEP, or the strings {', '.join(map(repr, AUTORESET_MODES))})"
    )


# the step-level info keys (about the action just taken) and their dtypes: what a reset step says
STEP_KEYS = {
    "clicked": bool, "clicked_position": np.int64, "engagement": np.float32,
    "regret": np.float32, "drift_event": bool, "drift_phase": np.int64, "clock": np.int64,
}  # fmt: skip
LIFE_KEYS = {
    "session_end": bool, "returned": bool, "churned": bool, "lifetime_end": bool,
    "gap": np.int64, "return_prob": np.float32, "user_time": np.int64,
    "session_index": np.int64, "lifetime_return": np.float64, "longterm_regret": np.float32,
}  # fmt: skip


class AutoresetSteps:
    """What a step returns about ended episodes, and the ``next_step`` bookkeeping; state lives
    on the core (``pending``: rows whose session ended at the last ``next_step`` step, so that
    their next step is a reset step)."""

    cfg: Any
    batch: int
    returning: bool
    users: Any
    lifetimes: Any
    world: Any
    obs: np.ndarray
    pending: np.ndarray
    any_pending: bool
    _rows: np.ndarray

    if TYPE_CHECKING:  # methods of the core

        def _draw_candidates(self) -> None: ...
        def _next_users(self, rows: np.ndarray) -> None: ...
        def _observe(self, rows: np.ndarray) -> None: ...
        def _candidate_arrays(self) -> dict[str, np.ndarray]: ...
        def _candidate_info(self) -> dict[str, np.ndarray]: ...
        def _lifetime_final_info(self, lifetime_end: np.ndarray) -> dict[str, np.ndarray]: ...

    def _final_info(self, done: np.ndarray, ended: np.ndarray, life: dict) -> dict[str, Any]:
        """``final_info``: dense ``(B, ...)`` arrays (zeros in rows that go on): the ended rows'
        candidates' ground truth and their episode's return and length."""
        final_info = {}
        for key, value in self._candidate_arrays().items():
            final_info[key] = np.zeros(value.shape, value.dtype)
            final_info[key][ended] = value[ended]
        if self.returning and self.cfg.horizon == "lifetime":
            lt = self.lifetimes
            final_info["episode_return"] = np.where(done, lt.lifetime_return, 0.0)
            final_info["episode_length"] = np.where(done, lt.lifetime_steps, 0)
        else:
            final_info["episode_return"] = np.where(done, self.users.session_return, 0.0)
            final_info["episode_length"] = np.where(done, self.users.session_step, 0)
        if self.returning:
            final_info.update(self._lifetime_final_info(life["lifetime_end"]))
        return final_info

    def _snapshot(self, rows: np.ndarray) -> list[tuple[Any, str, np.ndarray]]:
        """The rows' user and lifetime state, so that a reset step leaves a returning user as it
        was (a new user is drawn afresh anyway)."""
        owners = [(self.users, list(self.users.fields))]
        lt = self.lifetimes
        owners.append((lt, [n for n, v in vars(lt).items() if isinstance(v, np.ndarray)]))
        return [(o, name, getattr(o, name)[rows].copy()) for o, names in owners for name in names]

    @staticmethod
    def _restore(rows: np.ndarray, snapshot: list[tuple[Any, str, np.ndarray]] | None) -> None:
        for owner, name, values in snapshot or ():
            getattr(owner, name)[rows] = values

    def _pure_reset_step(self):
        """Every row is a reset step: ``reset()`` of every row, no tick (see the module doc)."""
        self._draw_candidates()
        self._next_users(self._rows)
        self._observe(self._rows)
        self.pending[:], self.any_pending = False, False
        keys = {**STEP_KEYS, **(LIFE_KEYS if self.returning else {})}
        info = {key: np.zeros(self.batch, dtype) for key, dtype in keys.items()}
        info["clicked_position"][:] = -1
        info["drift_phase"][:] = self.world.drift.phase
        info["clock"][:] = self.world.clock
        info["reset_step"] = np.ones(self.batch, bool)
        info.update(self._candidate_info())
        zeros = np.zeros(self.batch, bool)
        return self.obs, np.zeros(self.batch, np.float32), zeros, zeros.copy(), info

    def reset_rows(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Start the next episode of ``rows`` now, without a step (no tick): what a same-step
        autoreset does, for ``reset(options={"reset_mask": ...})``. Returns the candidate info."""
        self._next_users(rows)
        self._observe(rows)
        self.pending[rows] = False
        self.any_pending = bool(self.pending.any())
        return self._candidate_info()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()  # type: ignore[misc]
        state["pending"] = self.pending.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)  # type: ignore[misc]
        pending = np.asarray(state.get("pending", np.zeros(self.batch, bool)), bool)
        if pending.shape != (self.batch,):
            raise ValueError(f"inconsistent simulator state: pending of shape {pending.shape}")
        self.pending, self.any_pending = pending.copy(), bool(pending.any())


def mask_idle(info: dict[str, Any], idle: np.ndarray, keys: tuple[str, ...]) -> None:
    """Reset-step rows of the step-level keys ``keys`` say that nothing happened (in place)."""
    for key in keys:
        value = info.get(key)
        if isinstance(value, np.ndarray):
            value[idle] = -1 if key == "clicked_position" else 0
