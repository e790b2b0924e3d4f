"""Checkpointing :class:`recsim_env.core.BatchedCore` (mixed into it): its state as a plain data
tree, and restoring one with every inconsistency refused before anything changes.

The tree holds arrays and ints only (``recsim_env.state_io`` writes it as JSON + npz, no pickle);
the observation is not trusted but recomputed from the restored state and compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recsim_env.config import SimConfig
from recsim_env.returning import Lifetimes
from recsim_env.users import Users
from recsim_env.world import World


class CoreState:
    """``state_dict`` / ``load_state_dict`` of the core; its attributes are set up there."""

    cfg: SimConfig
    batch: int
    counter: int
    follower: bool
    returning: bool
    ready: bool
    world: World
    calibration: Any
    users: Users
    lifetimes: Lifetimes
    candidates: np.ndarray
    obs: np.ndarray
    _keys: list[Any]
    _rows: np.ndarray

    if TYPE_CHECKING:

        def _observe(self, rows: np.ndarray) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        state = {
            "counter": self.counter,
            "keys": [int(k) for k in self._keys],
            "users": self.users.state_dict(),
            "candidates": self.candidates.copy(),
            "obs": self.obs.copy(),
        }
        if not self.follower:
            state["world"] = self.world.state_dict()
        if self.returning:
            state["lifetimes"] = self.lifetimes.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (e.g. read back with ``recsim_env.state_io.load_tree``).
        A state of another configuration or batch size is a ``ValueError`` before anything is
        changed."""
        required = ["counter", "keys", "users", "candidates", "obs"]
        required += ["world"] if not self.follower else []
        required += ["lifetimes"] if self.returning else []
        missing = [k for k in required if not isinstance(state, dict) or k not in state]
        if missing:
            what = (
                f"a {type(state).__name__}" if not isinstance(state, dict) else f"missing {missing}"
            )
            raise ValueError(
                f"inconsistent simulator state: not a state_dict() of this env ({what})"
            )
        try:
            candidates = np.array(state["candidates"], np.int64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"inconsistent simulator state: candidates ({exc})") from exc
        if self.calibration is not None:
            users = state["users"] if isinstance(state["users"], dict) else {}
            real = np.asarray(users.get("real_index", np.empty(0)))
            if real.shape != (self.batch,) or not (
                real.dtype.kind in "iu"
                and 0 <= real.min() <= real.max() < self.calibration.num_users
            ):
                raise ValueError(
                    f"inconsistent simulator state: users.real_index of shape {real.shape} for an "
                    f"env of num_envs={self.batch} calibrated on {self.calibration.num_users} users"
                )
        if candidates.shape != (self.batch, self.cfg.num_candidates) or (
            candidates.size and not 0 <= candidates.min() <= candidates.max() < self.cfg.num_items
        ):
            raise ValueError(
                f"inconsistent simulator state: candidates of shape {candidates.shape} for an "
                f"env of num_envs={self.batch}, num_candidates={self.cfg.num_candidates}, "
                f"num_items={self.cfg.num_items}"
            )
        if "world" in state and not self.follower:
            self.world.load_state_dict(state["world"])
        self.counter = int(state["counter"])
        self._keys = [np.uint64(k) for k in state["keys"]]
        self.users.load_state_dict(state["users"])
        if self.returning:
            self.lifetimes.load_state_dict(state["lifetimes"])
        self.candidates = candidates
        self._observe(self._rows)
        if not np.array_equal(self.obs, state["obs"]):
            raise ValueError("inconsistent simulator state: the observation does not match")
        self.ready = True
