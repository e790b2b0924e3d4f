"""``RecSimVectorEnv``: B users stepped at once by the batched core (Gymnasium ``VectorEnv``).

Two autoreset modes (:mod:`recsim_env.core_autoreset`), chosen with ``autoreset_mode=`` and exposed
as ``env.autoreset_mode`` and ``env.metadata["autoreset_mode"]``:

* ``AutoresetMode.NEXT_STEP`` (Gymnasium's convention, the default of ``gymnasium.make_vec``):
  when user ``i``'s session ends, row ``i`` of the returned observation is its true last one; the
  next step of row ``i`` is a reset step (action ignored, reward 0, ``info["reset_step"][i]``)
  that returns the next user's first observation. Gymnasium's vector wrappers
  (``NormalizeObservation``, ``RecordEpisodeStatistics``, ...) and RLlib expect this.
* ``AutoresetMode.SAME_STEP`` (SB3's convention, the default of the class itself and of the
  runner): row ``i`` is already the next user's first observation and ``info["final_obs"][i]``
  holds the true last one (``info["_final_obs"]`` marks the rows). Unlike Gymnasium's object
  arrays, ``final_obs`` is a dense ``(B, obs_dim)`` float32 array (zeros in unmarked rows), so no
  per-user Python objects are built on the step path.

In both modes ``info["final_info"]`` (rows marked by ``info["_final_info"]``) is a dict of dense
``(B, ...)`` arrays about the episodes that ended: ``episode_return``, ``episode_length`` and the
ground truth of the last observation's candidates. ``reset(options={"reset_mask": mask})``
starts the next episode of the marked rows at once (no step, no world tick).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recsim_env.config import SimConfig
from recsim_env.core import BatchedCore
from recsim_env.core_autoreset import autoreset_name
from recsim_env.render import render_ansi, render_rgb
from recsim_env.spaces import (
    InvalidRenderModeError,
    action_space,
    observation_space,
    validate_actions,
)
from recsim_env.validation import check_int, fail
from recsim_env.world import World


class RecSimVectorEnv(VectorEnv):
    metadata = {
        "render_modes": ["ansi", "rgb_array"],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.SAME_STEP,  # the class default; per instance: see __init__
    }

    def __init__(
        self,
        num_envs: int = 1,
        *,
        autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
        render_mode: str | None = None,
        world: World | None = None,
        user_index: int = 0,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        self._autoreset = autoreset_name(autoreset_mode)  # "next_step" / "same_step"
        # what Gymnasium's own vector envs expose (its wrappers, TorchRL and RLlib read it)
        self.autoreset_mode = (
            AutoresetMode.NEXT_STEP if self._autoreset == "next_step" else AutoresetMode.SAME_STEP
        )
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        if max_episode_steps is not None:
            kwargs.setdefault("max_session_steps", max_episode_steps)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise InvalidRenderModeError(
                f"invalid render_mode={render_mode!r}: expected None or one of {self.metadata['render_modes']}"
            )
        self.config = SimConfig.from_kwargs(**kwargs)
        self.core = BatchedCore(self.config, num_envs, world=world, user_index=user_index)
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.obs_layout = self.core.layout
        self.single_observation_space = observation_space(self.config, self.obs_layout)
        self.single_action_space = action_space(self.config)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    @property
    def world(self) -> World:
        """Catalogue, drift and clock; pass it as ``world=`` to build an evaluation follower."""
        return self.core.world

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        self.core.check_usable("reset")
        if isinstance(seed, list | tuple):  # Gymnasium allows one seed per sub-env; one world here
            if not seed:
                fail("seed", seed, "an integer >= 0, None, or a non-empty list of them")
            seed = seed[0]
        seed = check_int("seed", seed, 0, optional=True)  # numpy integers too
        mask = (options or {}).get("reset_mask")
        if mask is not None:
            return self._reset_rows(mask, seed)
        super().reset(seed=seed)
        obs, info = self.core.reset(seed)
        return obs, info

    def _reset_rows(self, mask: Any, seed: int | None):
        """``reset(options={"reset_mask": mask})``: the marked rows start their next episode now
        (Gymnasium's partial reset); the other rows keep their observation."""
        mask = np.asarray(mask)
        if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or seed is not None:
            fail("reset_mask", mask, f"a bool array of shape ({self.num_envs},), without a seed")
        if not self.core.ready:
            self.core.check_usable("step")  # nothing to keep yet: call reset() first
        info = self.core.reset_rows(np.flatnonzero(mask))
        return self.core.obs, info

    def step(self, actions):
        if self.core.closed or not self.core.ready:  # before validating the actions
            self.core.check_usable("step")
        actions = validate_actions(self.config, actions, self.num_envs)
        return self.core.step(actions, autoreset=self._autoreset)

    def render(self) -> str | tuple[np.ndarray, ...] | None:
        """``ansi``: a text view of the first user; ``rgb_array``: one image per user (Gymnasium's
        vector convention)."""
        if self.render_mode == "ansi":
            return render_ansi(self.core)
        if self.render_mode == "rgb_array":
            return tuple(render_rgb(self.core, row) for row in range(self.num_envs))
        return None

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (world unless a follower, users, counters)."""
        return self.core.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.core.load_state_dict(state)

    def close_extras(self, **kwargs: Any) -> None:
        """``close()``: any later ``step``/``reset`` raises ``ClosedEnvironmentError``."""
        if hasattr(self, "core"):  # not when __init__ failed (Gymnasium's __del__ closes too)
            self.core.close()

    def __repr__(self) -> str:
        return (
            f"RecSimVectorEnv(num_envs={self.num_envs}, drift={self.config.drift!r}, "
            f"autoreset_mode={self._autoreset!r})"
        )


def make_vector_env(
    num_envs: int = 1,
    *,
    autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    **kwargs: Any,
) -> RecSimVectorEnv:
    """The registered ``vector_entry_point``: ``gymnasium.make_vec(id, num_envs=B, ...)`` gives
    Gymnasium's convention (``NEXT_STEP``) unless ``autoreset_mode`` says otherwise."""
    return RecSimVectorEnv(num_envs, autoreset_mode=autoreset_mode, **kwargs)
