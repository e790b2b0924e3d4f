"""Stable-Baselines3 face of the batched simulator.

:class:`RecSimVecEnv` is an SB3 ``VecEnv`` over the *same* batched core as
:class:`recsim_env.RecSimVectorEnv`: one vectorised numpy step serves all ``B`` users, there are no
``B`` Python copies of the environment (as ``DummyVecEnv`` would make) and no subprocesses.

SB3 wants the infos of a step as a list of ``B`` dicts. Building ``B`` dicts of ground truth per step
would cost more than the simulator step itself, so the list is kept minimal:

* users whose session ended this step get a fresh dict with what SB3 reads:
  ``terminal_observation``, ``TimeLimit.truncated`` and Monitor-style ``episode`` stats
  (``{"r": return, "l": length, "t": seconds since start}``, so that SB3 logs
  ``rollout/ep_rew_mean`` without a ``Monitor``/``VecMonitor`` wrapper);
* every other user gets the same shared, read-only empty dict. SB3 and its ``VecEnvWrapper``\\ s
  (``VecNormalize``, ``VecFrameStack``, ``VecTransposeImage``, ``VecMonitor``) only write into the
  infos of users that are done, so sharing is safe; code that writes into the info of a user still
  in session gets a ``TypeError`` saying so instead of silently writing into every user's info.

The batched ground truth (``click_prob``, ``regret``, ``drift_event``, ...) is in :attr:`last_info`,
the vector env's info dict of the last ``step``/``reset``, for metric callbacks.

This module imports ``stable_baselines3``; ``recsim_env/__init__.py`` does not import it, so the
simulator itself does not depend on SB3.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from recsim_env.observation import ObsLayout, get_obs_layout
from recsim_env.vector_env import RecSimVectorEnv

__all__ = ["RecSimVecEnv"]


class _SharedEmptyInfo(dict):
    """The read-only empty info dict shared by all users whose session goes on.

    Reading works as for any empty dict; copying (``copy``, ``copy.copy``, ``deepcopy``, pickle)
    yields an ordinary empty ``dict``; writing raises, because every such user shares this object.
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "RecSimVecEnv shares one read-only empty info dict between all users whose session did "
            "not end this step; copy it before writing (`dict(info)`). The batched ground truth is "
            "in `RecSimVecEnv.last_info`."
        )

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _read_only  # type: ignore[assignment]
    __ior__ = _read_only  # type: ignore[assignment]

    def copy(self) -> dict[str, Any]:
        return {}

    def __copy__(self) -> dict[str, Any]:
        return {}

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {}

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return (dict, ())


_EMPTY_INFO = _SharedEmptyInfo()


def _layers(env: Any) -> Iterable[Any]:
    """``env`` and every gymnasium (vector) wrapper layer beneath it."""
    seen: set[int] = set()
    while env is not None and id(env) not in seen:
        seen.add(id(env))
        yield env
        env = getattr(env, "env", None)


def _is_native_next_step(vector_env: Any, mode: Any) -> bool:
    return (
        isinstance(vector_env, RecSimVectorEnv)
        and gym.vector.AutoresetMode(mode) == gym.vector.AutoresetMode.NEXT_STEP
    )


class RecSimVecEnv(VecEnv):
    """SB3 ``VecEnv`` adapter over a batched gymnasium ``VectorEnv`` (normally ``RecSimVectorEnv``).

    Args:
        vector_env: a gymnasium vector env with same-step autoreset (``RecSimVectorEnv``, or any
            ``VectorEnv`` whose ``metadata["autoreset_mode"]`` is ``AutoresetMode.SAME_STEP`` and
            whose info carries ``final_obs``/``_final_obs``), possibly wrapped; or an unwrapped
            ``RecSimVectorEnv`` with ``autoreset_mode=NEXT_STEP`` (``gymnasium.make_vec``'s
            default), whose ended users are then reset at once (``reset_mask``), which gives
            exactly the SAME_STEP stream.
        episode_stats: add Monitor-style ``episode`` stats to the infos of users whose session
            ended (SB3 then logs ``rollout/ep_rew_mean`` / ``ep_len_mean``). With it,
            ``env_is_wrapped(Monitor)`` answers ``True``, as for a ``Monitor``-wrapped env.

    Attributes:
        vector_env: the wrapped gymnasium vector env.
        obs_layout: the :class:`~recsim_env.observation.ObsLayout` of the observations.
        last_info: the batched info dict of the last ``reset``/``step`` (``None`` before the first
            reset), with ``final_obs``/``_final_obs`` as the vector env returned them.
        last_terminated, last_truncated: the ``(B,)`` bool arrays of the last step (SB3 merges
            them into ``dones``).

    Notes on the SB3 API over one batched core:
        * ``seed(s)`` stores ``s, s+1, ...`` like every SB3 VecEnv; the next ``reset()`` passes the
          first of them to ``vector_env.reset(seed=...)``, which re-creates the whole world. Options
          likewise: the first user's options are used.
        * ``get_attr``/``env_method`` act on the single vector env and repeat the result once per
          requested index; ``set_attr`` sets the attribute once and must target all users.
        * ``reset_infos`` holds the shared empty dict per user; the reset's batched info is in
          ``last_info``.
    """

    def __init__(self, vector_env: gym.vector.VectorEnv, *, episode_stats: bool = True) -> None:
        if isinstance(vector_env, VecEnv):
            raise TypeError("RecSimVecEnv wraps a gymnasium VectorEnv, not an SB3 VecEnv")
        if not isinstance(vector_env, gym.vector.VectorEnv):
            raise TypeError(
                f"RecSimVecEnv wraps a gymnasium VectorEnv (e.g. gymnasium.make_vec(...)), "
                f"got {type(vector_env).__name__}"
            )
        mode = vector_env.metadata.get("autoreset_mode")
        # the native env under NEXT_STEP: SB3's convention by resetting ended users at once
        self._reset_at_once = mode is not None and _is_native_next_step(vector_env, mode)
        if (
            mode is not None
            and gym.vector.AutoresetMode(mode) != gym.vector.AutoresetMode.SAME_STEP
            and not self._reset_at_once
        ):
            raise ValueError(
                f"RecSimVecEnv needs a vector env with autoreset_mode=SAME_STEP (SB3's semantics), "
                f"or an unwrapped RecSimVectorEnv, got {mode} on {vector_env}"
            )
        self.vector_env = vector_env
        self.obs_layout: ObsLayout = get_obs_layout(vector_env)
        self.episode_stats = bool(episode_stats)
        super().__init__(
            vector_env.num_envs,
            vector_env.single_observation_space,
            vector_env.single_action_space,
        )
        self.reset_infos = [_EMPTY_INFO] * self.num_envs
        self.last_info: dict[str, Any] | None = None
        self.last_terminated = np.zeros(self.num_envs, dtype=bool)
        self.last_truncated = np.zeros(self.num_envs, dtype=bool)
        self._actions: np.ndarray | None = None
        self._episode_returns = np.zeros(self.num_envs, dtype=np.float64)
        self._episode_lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._t_start = time.time()

    # ------------------------------------------------------------------ construction
    @classmethod
    def make(
        cls, env_id: str, num_envs: int, *, episode_stats: bool = True, **kwargs: Any
    ) -> RecSimVecEnv:
        """``RecSimVecEnv(gymnasium.make_vec(env_id, num_envs=num_envs, **kwargs))``.

        ``env_id`` is a registered id such as ``"recsim_env/DriftingUsers-v0"``; ``kwargs`` are the
        simulator's parameters.
        """
        kwargs.setdefault("autoreset_mode", gym.vector.AutoresetMode.SAME_STEP)
        return cls(gym.make_vec(env_id, num_envs=num_envs, **kwargs), episode_stats=episode_stats)

    # ------------------------------------------------------------------ stepping
    def reset(self) -> VecEnvObs:
        seed = self._seeds[0]
        options = self._options[0] or None
        obs, info = self.vector_env.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        self.last_info = info
        self.last_terminated = np.zeros(self.num_envs, dtype=bool)
        self.last_truncated = np.zeros(self.num_envs, dtype=bool)
        self._episode_returns[:] = 0.0
        self._episode_lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        obs, rewards, terminated, truncated, info = self.vector_env.step(self._actions)
        self._actions = None
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        # a copy: SB3's on-policy loop adds bootstrapped values into `rewards` in place
        rewards = np.array(rewards, dtype=np.float32)
        dones = terminated | truncated
        if self._reset_at_once and dones.any():
            info = self._start_next_users(obs, info, dones)
        self._episode_returns += rewards
        self._episode_lengths += 1

        infos: list[dict[str, Any]] = [_EMPTY_INFO] * self.num_envs
        done_idx = np.flatnonzero(dones)
        if done_idx.size:
            final_obs = info.get("final_obs")
            elapsed = round(time.time() - self._t_start, 6)
            for i in done_idx.tolist():
                done_info: dict[str, Any] = {
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                }
                if final_obs is not None:
                    done_info["terminal_observation"] = final_obs[i]
                if self.episode_stats:
                    done_info["episode"] = {
                        "r": round(float(self._episode_returns[i]), 6),
                        "l": int(self._episode_lengths[i]),
                        "t": elapsed,
                    }
                infos[i] = done_info
            self._episode_returns[done_idx] = 0.0
            self._episode_lengths[done_idx] = 0

        self.last_info = info
        self.last_terminated = terminated
        self.last_truncated = truncated
        return obs, rewards, dones, infos

    def _start_next_users(self, obs: np.ndarray, info: dict[str, Any], dones: np.ndarray):
        """NEXT_STEP → SAME_STEP: the ended rows' true last observations go to ``final_obs`` and
        their next users start now (``obs`` is updated in place, as the native env does)."""
        final_obs = np.zeros_like(obs)
        final_obs[dones] = obs[dones]
        new_obs, reset_info = self.vector_env.reset(options={"reset_mask": dones})
        if new_obs is not obs:
            obs[dones] = new_obs[dones]
        return {**info, **reset_info, "final_obs": final_obs, "_final_obs": dones}

    def close(self) -> None:
        self.vector_env.close()

    # ------------------------------------------------------------------ attributes and methods
    def _find_attr(self, name: str) -> tuple[Any, Any]:
        """The first wrapper layer that has ``name``, and the value."""
        for layer in _layers(self.vector_env):
            try:
                return layer, getattr(layer, name)
            except AttributeError:
                continue
        raise AttributeError(f"{type(self.vector_env).__name__} has no attribute {name!r}")

    def _count(self, indices: VecEnvIndices) -> int:
        return len(list(self._get_indices(indices)))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The vector env's attribute, repeated once per index (all users share one env)."""
        return [self._find_attr(attr_name)[1]] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the vector env (shared by all users, so ``indices`` must be all)."""
        if indices is not None and sorted(set(self._get_indices(indices))) != list(
            range(self.num_envs)
        ):
            raise ValueError(
                "RecSimVecEnv runs all users in one batched env: set_attr can only target all "
                f"of them (indices=None), got indices={indices!r}"
            )
        try:
            layer, _ = self._find_attr(attr_name)
        except AttributeError:
            layer = self.vector_env
        setattr(layer, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of the vector env once; its result is repeated once per index."""
        result = self._find_attr(method_name)[1](*method_args, **method_kwargs)
        return [result] * self._count(indices)

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Whether a layer of the vector env is a ``wrapper_class``.

        ``Monitor`` counts as present when ``episode_stats`` is on: the adapter then provides the
        ``episode`` info that SB3 reads from a ``Monitor``.
        """
        from stable_baselines3.common.monitor import Monitor

        wrapped = any(isinstance(layer, wrapper_class) for layer in _layers(self.vector_env))
        wrapped = wrapped or (self.episode_stats and wrapper_class is Monitor)
        return [wrapped] * self._count(indices)

    # ------------------------------------------------------------------ seeding and rendering
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seeds for the next ``reset()`` (the first one seeds the batched core).

        Unlike SB3's default, ``seed=None`` draws fresh OS entropy instead of the global numpy RNG.
        """
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._seeds = [seed + idx for idx in range(self.num_envs)]
        return self._seeds

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.vector_env.render()
        if frames is None or isinstance(frames, str):
            return [None] * self.num_envs
        return list(frames)

    def render(self, mode: str | None = None) -> Any:
        """The vector env's rendering.

        Text modes (``ansi``: one table for the batch) are returned as the vector env renders
        them; image modes go through SB3's ``VecEnv.render`` (frames tiled into one image).
        """
        if mode in (None, self.render_mode) and self.render_mode == "ansi":
            return self.vector_env.render()
        return super().render(mode=mode)

    def __repr__(self) -> str:
        return f"RecSimVecEnv({self.vector_env!r}, num_envs={self.num_envs})"
