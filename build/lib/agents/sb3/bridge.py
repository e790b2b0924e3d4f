"""Metrics from SB3's own training loop to our :class:`~agents.base.StepCallback`.

Two channels, because SB3 has two:

* :class:`StepCallbackBridge`, an SB3 ``BaseCallback``: after every vector step it builds a
  :class:`~agents.base.Transition` from SB3's rollout locals and the batched ground truth
  (``RecSimVecEnv.last_info``) and calls ``on_step``; ``False`` stops SB3's ``learn``.
* :class:`StepCallbackOutputFormat`, an SB3 logger ``KVWriter``: at each logger dump it forwards
  SB3's scalars (``rollout/*``, ``train/*``, ``time/*``) to ``on_log``. SB3 computes these only in
  its logger (wandb's ``WandbCallback`` does not see them either), so an output format is the one
  place that receives them all. ``train/learning_rate`` is also sent as ``train/lr`` and
  ``rollout/exploration_rate`` as ``train/epsilon``, the names our own agents use.

Both work with plain SB3 too::

    model.set_logger(Logger(None, [StepCallbackOutputFormat(my_callback)]))
    model.learn(10_000, callback=StepCallbackBridge(my_callback))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter
from stable_baselines3.common.vec_env import VecEnv

from agents.base import StepCallback, Transition
from recsim_env.sb3_vec_env import RecSimVecEnv

#: SB3 logger keys that are also forwarded under our metric names.
SB3_KEY_ALIASES = {
    "train/learning_rate": "train/lr",
    "rollout/exploration_rate": "train/epsilon",
}

# Keys SB3 (or the SAME_STEP autoreset) puts into per-env infos that are not ground truth.
_NOT_GROUND_TRUTH = frozenset(
    {
        "terminal_observation",
        "TimeLimit.truncated",
        "episode",
        "is_success",
        "final_obs",
        "_final_obs",
        "final_info",
        "_final_info",
    }
)


def _scalar(value: Any) -> float | None:
    """``value`` as a float if it is a single number (python, numpy or torch), else ``None``."""
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "biuf":
        return float(value.reshape(()))
    numel = getattr(value, "numel", None)
    if callable(numel) and hasattr(value, "item"):
        try:
            return float(value.item()) if numel() == 1 else None
        except (TypeError, ValueError):
            return None
    return None


class StepCallbackOutputFormat(KVWriter):
    """SB3 logger output format that forwards each dump's scalars to ``target.on_log``.

    ``target`` may be swapped between ``learn`` calls (the adapters point it at the callback of the
    current call). Non-scalar values (videos, figures, text) are skipped; a key recorded with
    ``exclude="recsim"`` is not forwarded.
    """

    name = "recsim"

    def __init__(self, target: StepCallback | None = None) -> None:
        self.target = target

    def write(
        self,
        key_values: dict[str, Any],
        key_excluded: dict[str, tuple[str, ...]],
        step: int = 0,
    ) -> None:
        target = self.target
        if target is None:
            return
        scalars: dict[str, float] = {}
        for key, value in key_values.items():
            excluded = key_excluded.get(key) or ()
            if self.name in ((excluded,) if isinstance(excluded, str) else excluded):
                continue
            number = _scalar(value)
            if number is None:
                continue
            scalars[key] = number
            alias = SB3_KEY_ALIASES.get(key)
            if alias is not None:
                scalars.setdefault(alias, number)
        if scalars:
            target.on_log(scalars, int(step))

    def close(self) -> None:
        self.target = None


def find_recsim_vec_env(env: VecEnv | None) -> RecSimVecEnv | None:
    """The :class:`RecSimVecEnv` at the bottom of a stack of SB3 ``VecEnvWrapper``\\ s, if any."""
    seen: set[int] = set()
    while env is not None and id(env) not in seen:
        seen.add(id(env))
        if isinstance(env, RecSimVecEnv):
            return env
        env = getattr(env, "venv", None)
    return None


def batch_infos(
    infos: Sequence[Mapping[str, Any]],
    dones: np.ndarray,
    next_obs: np.ndarray,
    reset_infos: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Per-env infos of an SB3 VecEnv of single envs (e.g. ``make_vec_env``) → one batched dict.

    Mirrors the vector env's same-step autoreset: for an env that was reset this step, keys that its
    reset info has (ground truth about the candidates of the new first observation) come from the
    reset info, the rest (about the action just taken) from the step info. Numeric keys present in
    every env's info are stacked; ``final_obs``/``_final_obs`` are built from
    ``terminal_observation`` the way ``RecSimVectorEnv`` returns them (a dense array shaped like
    ``next_obs``, zeros in rows that did not end, and a bool mask).
    """
    n = len(infos)
    batched: dict[str, Any] = {}
    if n == 0:
        return batched
    keys = [k for k in infos[0] if k not in _NOT_GROUND_TRUTH and all(k in i for i in infos)]
    for key in keys:
        values = []
        for i in range(n):
            source = infos[i]
            if dones[i] and reset_infos is not None and key in reset_infos[i]:
                source = reset_infos[i]
            values.append(np.asarray(source[key]))
        try:
            stacked = np.stack(values)
        except ValueError:  # shapes differ between envs: not a batchable key
            continue
        if stacked.dtype.kind in "biuf":
            batched[key] = stacked
    final_obs = np.zeros_like(next_obs)
    has_final = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(dones).tolist():
        terminal = infos[i].get("terminal_observation")
        if terminal is not None:
            final_obs[i], has_final[i] = terminal, True
    batched["final_obs"], batched["_final_obs"] = final_obs, has_final
    return batched


def transition_from_sb3(model: BaseAlgorithm, rollout_locals: Mapping[str, Any]) -> Transition:
    """One :class:`Transition` from SB3's ``collect_rollouts`` locals at ``callback.on_step()``.

    At that point SB3 has stepped the env and counted the step but not yet replaced
    ``model._last_obs`` (the observation the actions were chosen on).
    """
    env = model.get_env()
    next_obs = rollout_locals["new_obs"]
    dones = np.asarray(rollout_locals["dones"], dtype=bool)
    infos = rollout_locals["infos"]
    # copies: SB3's on-policy loop adds bootstrapped values into `rewards` after the callback
    rewards = np.array(rollout_locals["rewards"], copy=True)
    actions = np.array(rollout_locals["actions"], copy=True)

    recsim = find_recsim_vec_env(env)
    if recsim is not None and recsim.last_info is not None:
        info = recsim.last_info
        terminated, truncated = recsim.last_terminated, recsim.last_truncated
    else:
        truncated = dones & np.array([bool(i.get("TimeLimit.truncated", False)) for i in infos])
        terminated = dones & ~truncated
        reset_infos = getattr(env.unwrapped, "reset_infos", None) if env is not None else None
        info = batch_infos(infos, dones, next_obs, reset_infos)

    final_obs = next_obs
    done_idx = np.flatnonzero(dones)
    dense_final = info.get("final_obs") if recsim is env else None
    if done_idx.size and isinstance(dense_final, np.ndarray) and dense_final.dtype != object:
        # the vector env's own dense (B, obs_dim) final observations: no per-user loop
        final_obs = next_obs.copy()
        final_obs[dones] = dense_final[dones]
    elif done_idx.size and isinstance(next_obs, np.ndarray):
        final_obs = next_obs.copy()
        for i in done_idx.tolist():
            terminal = infos[i].get("terminal_observation")
            if terminal is not None:
                final_obs[i] = terminal

    metrics: dict[str, float] = {
        "train/lr": float(model.lr_schedule(model._current_progress_remaining))
    }
    epsilon = getattr(model, "exploration_rate", None)
    if epsilon is not None:
        metrics["train/epsilon"] = float(epsilon)

    return Transition(
        obs=model._last_obs,  # type: ignore[arg-type]
        actions=actions,
        rewards=rewards,
        terminated=terminated,
        truncated=truncated,
        next_obs=next_obs,
        final_obs=final_obs,
        info=info,
        num_timesteps=int(model.num_timesteps),
        metrics=metrics,
    )


class StepCallbackBridge(BaseCallback):
    """SB3 callback that drives one of our :class:`StepCallback`\\ s.

    ``on_training_start`` receives ``agent`` (the adapter, or the SB3 model if none is given).
    At the end of training, scalars recorded since the last logger dump (e.g. the last
    ``train/loss``) are flushed first, so that ``on_log`` sees them before ``on_training_end``.
    """

    def __init__(self, step_callback: StepCallback, agent: Any = None) -> None:
        super().__init__(verbose=0)
        self.step_callback = step_callback
        self.agent = agent

    def _on_training_start(self) -> None:
        self.step_callback.on_training_start(self.agent if self.agent is not None else self.model)

    def _on_step(self) -> bool:
        return bool(self.step_callback.on_step(transition_from_sb3(self.model, self.locals)))

    def _on_training_end(self) -> None:
        if self.model.logger.name_to_value:
            self.model.logger.dump(step=self.model.num_timesteps)
        self.step_callback.on_training_end()
