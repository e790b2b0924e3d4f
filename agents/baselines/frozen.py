"""A learner that stops learning: the reference that shows what drift costs without adaptation.

``FrozenAgent`` wraps any agent (ours, an SB3 adapter, a plug-in), lets it learn for
``learn_steps`` user-steps, then freezes it: from then on it acts greedily with the policy it had
(``act(obs, explore=False)``), never updates, but keeps stepping the env, so the stream (and the
drift clock) goes on exactly as for a learner. Recovery after a drift event is measured against it:
a frozen policy that drops at a jump never comes back.

Built from a nested agent config, so any agent can be frozen from the command line::

    recsim-train agent=frozen                                   # LinUCB, frozen after 30k steps
    recsim-train agent=frozen agent@agent.inner=swucb agent.learn_steps=50000
    recsim-train agent=frozen agent@agent.inner=dqn agent.inner.gamma=0.5

``conf/agent/frozen.yaml`` puts the inner agent's option under ``agent.inner`` (a defaults entry
``/agent@inner``) and sets ``_recursive_: false``: Hydra must not build the inner agent itself,
because it needs the env, which only the wrapper passes on. ``inner`` may also be a ready agent
(``FrozenAgent(env, inner=LinUCB(env), learn_steps=1000)``).

Checkpoints: ``save(path)`` writes a directory, the inner agent's own checkpoint at
``path/inner`` (in its own format: plain-data tree, torch or SB3 zip) and ``path/frozen.json`` (the inner
class, its config, the step counts); ``load`` rebuilds the inner with its class's ``load``. A
checkpoint is data: ``frozen.json`` never chooses the class that loads (see :meth:`FrozenAgent.load`).
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import (
    ContinuesStream,
    Info,
    StepCallback,
    Transition,
    agent_traits,
    final_observations,
    is_pure_reset,
    mark_reset_steps,
    user_steps,
)
from recsim_env.validation import ConfigError, check_int

CHECKPOINT_FORMAT = 1
META_FILE = "frozen.json"
INNER_DIR = "inner"


def _plain_spec(spec: Any) -> dict[str, Any]:
    """An agent config (a ``DictConfig`` from Hydra or a mapping) as plain, resolved containers."""
    if not isinstance(spec, dict):
        from omegaconf import DictConfig, OmegaConf  # Hydra's config type (lazy: agents need
        # no Hydra unless built from a config)

        if isinstance(spec, DictConfig):
            spec = OmegaConf.to_container(spec, resolve=True)
    spec = dict(spec)
    if "_target_" not in spec:
        raise ConfigError(
            f"invalid inner={spec!r} (allowed: an agent config with a _target_, e.g. "
            "agent@agent.inner=linucb, or an agent object)"
        )
    return spec


def build_agent(spec: Mapping[str, Any], env: Any) -> Any:
    """Build an agent from its config the way the runner does: ``instantiate(spec, env=env)``."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(dict(spec), env=env)
    except InstantiationException as exc:  # e.g. a misspelled inner hyperparameter
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        raise ConfigError(
            f"invalid inner agent config (inner._target_={spec.get('_target_')}): {cause}"
        ) from exc


def _project_agent_class(name: Any, where: Path) -> Any:
    """The project's agent class called ``name`` (``module.Class``, a class *defined* in a module
    of the ``agents`` package, with ``load``); anything else is refused before it is used."""
    allowed = "the dotted name of an agent class of this project (agents.*), or pass inner_class="
    if not isinstance(name, str) or not _DOTTED.fullmatch(name) or not name.startswith("agents."):
        raise ConfigError(f"invalid {where} inner_class={name!r} (allowed: {allowed})")
    module_name, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"invalid {where} inner_class={name!r} (allowed: {allowed})") from exc
    if (
        not isinstance(obj, type)
        or obj.__module__ != module_name
        or obj.__qualname__ != attr
        or not callable(getattr(obj, "load", None))
    ):
        raise ConfigError(f"invalid {where} inner_class={name!r} (allowed: {allowed})")
    return obj


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _is_agent(obj: Any) -> bool:
    return all(callable(getattr(obj, name, None)) for name in ("act", "learn", "save"))


class _LearningPhase(StepCallback):
    """Forwards the inner agent's steps to the runner's callback and remembers whether it asked to
    stop; training start/end are the wrapper's to announce (once per ``learn``, with itself)."""

    def __init__(self, owner: FrozenAgent, outer: StepCallback | None) -> None:
        self.owner = owner
        self.outer = outer
        self.stopped = False

    def on_step(self, transition: Transition) -> bool:
        self.owner.learned_steps = int(transition.num_timesteps)
        # where the stream stands: the frozen phase takes it over from here
        self.owner._obs, self.owner._info = transition.next_obs, transition.info
        if self.outer is None:
            return True
        keep_going = self.outer.on_step(transition)
        if keep_going is False:
            self.stopped = True
        return keep_going

    def on_log(self, scalars: dict[str, float], num_timesteps: int) -> None:
        if self.outer is not None:
            self.outer.on_log(scalars, num_timesteps)


class FrozenAgent:
    """Learns with ``inner`` for ``learn_steps`` user-steps, then acts greedily and never updates.

    Hyperparameters: ``inner`` (an agent config with ``_target_`` or an agent object),
    ``learn_steps`` (user-steps of learning; 0 = never learns; a vector step is never split, so
    learning ends at the first vector step that reaches it), ``seed`` (seeds the env's reset when
    the frozen phase starts without a learning phase before it).

    ``num_timesteps`` counts all user-steps (learning + frozen), like SB3's. While learning,
    ``act`` is the inner agent's; once frozen it is ``inner.act(obs, explore=False)`` whatever
    ``explore`` says. The inner agent's rankings (``scores``) and click model
    (``click_probability``) are passed through, so evaluation sees the frozen policy.
    """

    def __init__(
        self, env: Any, inner: Any, learn_steps: int = 30000, seed: int | None = None
    ) -> None:
        self.learn_steps = check_int("learn_steps", learn_steps, 0)
        self.seed = check_int("seed", seed, optional=True)
        self.env = env
        self.inner_spec: dict[str, Any] | None = None
        if _is_agent(inner):
            self.inner = inner
        elif isinstance(inner, Mapping) or hasattr(inner, "_metadata"):  # dict / DictConfig
            self.inner_spec = _plain_spec(inner)
            self.inner = build_agent(self.inner_spec, env)
        else:
            raise ConfigError(
                f"invalid inner={inner!r} (allowed: an agent config with a _target_, e.g. "
                "agent@agent.inner=linucb, or an agent object)"
            )
        self.num_envs = int(getattr(env, "num_envs", getattr(self.inner, "num_envs", 1)))
        self.learned_steps = 0  # user-steps the inner agent learned from
        self.frozen_steps = 0  # user-steps acted with the frozen policy
        self._own_stream = False  # the frozen phase has taken over the env stream from `inner`
        self._obs: np.ndarray | None = None
        self._last_done: np.ndarray | None = None  # NEXT_STEP envs that do not mark reset steps
        self._info: Info | None = None
        self._act_takes_info = agent_traits(self.inner).act_uses_info

    # ------------------------------------------------------------------ state
    @property
    def num_timesteps(self) -> int:
        return self.learned_steps + self.frozen_steps

    @property
    def frozen(self) -> bool:
        """Whether learning is over (the policy no longer changes)."""
        return self.learned_steps >= self.learn_steps

    def continue_stream(self, obs: np.ndarray, info: Info | None) -> None:
        """Resume the stream at ``obs`` (:class:`agents.base.ContinuesStream`): the inner agent's
        while it learns, the frozen phase's once it has taken the stream over."""
        self._obs, self._info = obs, info
        if not self._own_stream and isinstance(self.inner, ContinuesStream):
            self.inner.continue_stream(obs, info)

    # ------------------------------------------------------------------ acting
    def act(
        self, obs: np.ndarray, *, explore: bool = False, info: Info | None = None
    ) -> np.ndarray:
        explore = bool(explore) and not self.frozen
        if self._act_takes_info:
            return self.inner.act(obs, explore=explore, info=info)
        return self.inner.act(obs, explore=explore)

    @property
    def scores(self) -> Callable[..., np.ndarray] | None:
        """The inner agent's greedy ranking score ``(B, C)`` (``scores`` or ``q_values``), or
        ``None`` when it has none (then evaluation computes no ranking metric, as for the inner)."""
        fn = getattr(self.inner, "scores", None)
        if callable(fn):
            if agent_traits(self.inner).scores_uses_info:
                return lambda obs, *, explore=False, info=None: fn(obs, explore=False, info=info)
            return lambda obs, *, explore=False, info=None: fn(obs)
        q_values = getattr(self.inner, "q_values", None)
        if callable(q_values):
            return lambda obs, *, explore=False, info=None: q_values(obs)
        return None

    def click_probability(self, obs: np.ndarray, *, info: Info | None = None) -> np.ndarray | None:
        """The inner agent's click model (``None`` when it has none; see ``agents.click_model``)."""
        fn = getattr(self.inner, "click_probability", None)
        return fn(obs, info=info) if callable(fn) else None

    # ------------------------------------------------------------------ the loop
    def learn(self, total_steps: int, callback: StepCallback | None = None) -> FrozenAgent:
        """``total_steps`` more user-steps: the inner agent's own ``learn`` until ``learn_steps``,
        then the frozen policy. Repeated calls continue the same stream."""
        total_steps = check_int("total_steps", total_steps, 0)
        target = self.num_timesteps + total_steps
        if callback is not None:
            callback.on_training_start(self)
        try:
            stopped = False
            if not self.frozen and total_steps > 0:
                phase = _LearningPhase(self, callback)
                self.inner.learn(min(self.learn_steps - self.learned_steps, total_steps), phase)
                stopped = phase.stopped
            if not stopped and self.frozen and self.num_timesteps < target:
                self._run_frozen(target, callback)
        finally:
            if callback is not None:
                callback.on_training_end()
        return self

    def _run_frozen(self, target: int, callback: StepCallback | None) -> None:
        if not self._own_stream:  # take the stream over where the inner agent left it
            if self._obs is None:  # never learned: the stream starts here
                self._obs, self._info = self.env.reset(seed=self.seed)
            self._own_stream = True
        obs, info = self._obs, self._info
        assert obs is not None  # set just above or by the learning phase / continue_stream
        while self.num_timesteps < target:
            actions = self.act(obs, explore=False, info=info)
            step = self.env.step(actions)
            next_obs, next_info = step[0], step[4]
            next_info = mark_reset_steps(self.env, next_info, self._last_done)
            self._last_done = np.logical_or(step[2], step[3])
            if is_pure_reset(next_info):  # nobody was served: no step to count or report
                obs, info = self._obs, self._info = next_obs, next_info
                continue
            step = (*step[:4], next_info)
            final_obs = final_observations(next_obs, next_info)
            self.frozen_steps += user_steps(next_info, self.num_envs)  # reset steps: none
            prev_obs, obs, info = obs, next_obs, next_info
            self._obs, self._info = obs, info
            if callback is not None and not callback.on_step(
                Transition.of_step(prev_obs, actions, step, final_obs, self.num_timesteps)
            ):
                return

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, include_replay: bool | None = None) -> None:
        """A directory: the inner agent's checkpoint (``inner``, its own format) and
        ``frozen.json``. ``include_replay`` is passed on to an inner agent that takes it."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if include_replay is not None and agent_traits(self.inner).save_accepts_replay:
            self.inner.save(tmp / INNER_DIR, include_replay=include_replay)
        else:
            self.inner.save(tmp / INNER_DIR)
        inner_cls = type(self.inner)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "inner_class": f"{inner_cls.__module__}.{inner_cls.__qualname__}",
            "inner_spec": self.inner_spec,
            "learn_steps": self.learn_steps,
            "seed": self.seed,
            "learned_steps": self.learned_steps,
            "frozen_steps": self.frozen_steps,
            "own_stream": self._own_stream,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        tmp.replace(path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        env: Any = None,
        *,
        inner_class: type[Any] | None = None,
        trust_checkpoints: bool = False,
    ) -> FrozenAgent:
        """Rebuild from :meth:`save`'s directory; ``env`` is needed to keep stepping.

        ``frozen.json`` is data and never chooses what code runs: the inner agent's class is
        ``inner_class`` (the class your config builds; ``frozen.json`` must name the same one) or,
        without it, one of this project's agent classes (a class defined in the ``agents``
        package). It loads through its own ``load`` — pickle-free for the project's agents; an SB3
        inner agent's zip (cloudpickle) only with ``trust_checkpoints=True``.
        """
        path = Path(path)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise ValueError(f"{path} is not a FrozenAgent checkpoint (no {META_FILE})")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{meta_path} is not readable JSON ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else meta
            raise ValueError(
                f"{meta_path} has checkpoint format {found!r}; this version reads "
                f"format {CHECKPOINT_FORMAT}"
            )
        named = meta.get("inner_class")
        if inner_class is not None:
            expected = f"{inner_class.__module__}.{inner_class.__qualname__}"
            if named != expected:
                raise ValueError(
                    f"{meta_path} names inner_class={named!r}, but the config builds {expected}: "
                    "the checkpoint is not this agent's (frozen.json never chooses the class)"
                )
            klass = inner_class
        else:
            klass = _project_agent_class(named, meta_path)
        loader = klass.load
        import inspect

        params = inspect.signature(loader).parameters
        extra = {"trust_checkpoints": trust_checkpoints} if "trust_checkpoints" in params else {}
        inner = loader(path / INNER_DIR, env=env, **extra)
        agent = cls(env, inner=inner, learn_steps=meta["learn_steps"], seed=meta["seed"])
        spec = meta.get("inner_spec")
        agent.inner_spec = dict(spec) if isinstance(spec, dict) else None
        agent.learned_steps = check_int("frozen.json learned_steps", meta["learned_steps"], 0)
        agent.frozen_steps = check_int("frozen.json frozen_steps", meta["frozen_steps"], 0)
        agent._own_stream = bool(meta["own_stream"])
        return agent

    def __repr__(self) -> str:
        return (
            f"FrozenAgent(inner={type(self.inner).__name__}, learn_steps={self.learn_steps}, "
            f"num_timesteps={self.num_timesteps}, frozen={self.frozen})"
        )
