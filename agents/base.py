"""The agent contract.

Every agent — ours, SB3's behind an adapter, or a plug-in from another package — is built by the
runner as ``hydra.utils.instantiate(cfg.agent, env=train_env)`` and then driven through this
SB3-shaped interface. ``OnlineAgent`` implements ``learn`` once (act → step → observe → update), so a
new agent writes only ``act``, ``observe`` and ``update``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from recsim_env.observation import ObsLayout, get_obs_layout
from recsim_env.state_io import CheckpointError, load_tree, save_tree

Info = dict[str, Any]
CHECKPOINT_FORMAT = "recsim-online-agent/1"  # OnlineAgent.save's files


@dataclass
class Transition:
    """One vector step over all ``B`` users, as the callback sees it.

    ``next_obs`` is what the agent sees next (after autoreset, a new user's first observation);
    ``final_obs`` holds the true last observation of users whose session ended this step (rows of
    users still going equal ``next_obs``). ``info`` is the step's batched info: ground truth about
    the action just taken (``clicked``, ``engagement``, ``regret``, ``drift_event``, ...) and about
    the candidates in ``next_obs`` (``click_prob``, ``expected_reward``, ``oracle_action``).
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_obs: np.ndarray
    final_obs: np.ndarray
    info: Info
    num_timesteps: int  # user-steps so far, including this step (SB3's num_timesteps)
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. train/loss, train/epsilon

    @classmethod
    def of_step(
        cls,
        obs: np.ndarray,
        actions: np.ndarray,
        step: tuple[Any, ...],
        final_obs: np.ndarray,
        num_timesteps: int,
        metrics: dict[str, float] | None = None,
    ) -> Transition:
        """The transition of ``step = env.step(actions)`` (the vector env's five results)."""
        next_obs, rewards, terminated, truncated, info = step
        return cls(
            obs, actions, rewards, terminated, truncated, next_obs, final_obs, info,
            num_timesteps, metrics if metrics is not None else {},
        )  # fmt: skip


class StepCallback:
    """Hook through which the runner watches training and can stop it.

    Subclass and override what you need. ``on_step`` returning ``False`` stops ``learn``.
    The same hook serves our agents and SB3's (through ``agents.sb3`` adapters).
    """

    def on_training_start(self, agent: Any) -> None:
        """Called once at the start of ``learn``."""

    def on_step(self, transition: Transition) -> bool:
        """Called after every vector step; return ``False`` to stop training."""
        return True

    def on_training_end(self) -> None:
        """Called once when ``learn`` returns (also when it was stopped)."""

    def on_log(self, scalars: dict[str, float], num_timesteps: int) -> None:
        """Scalars an agent logs outside ``on_step`` (e.g. SB3's ``train/*`` at each dump)."""


@runtime_checkable
class Agent(Protocol):
    """What the runner needs from an agent (shaped like SB3's algorithms).

    ``__init__(self, env, **hyperparameters)`` takes the (vector) training env.
    ``act`` is batched: ``obs`` has shape ``(B, obs_dim)``, the result ``(B,)`` (or ``(B, k)`` in
    slate mode). ``info`` is the info that came with ``obs``; only oracles read it, and an agent
    may leave the parameter out: ``act(obs, *, explore=False)`` is enough.

    Optional class attributes say what else the runner may rely on (see :class:`AgentTraits`;
    left out, each is read off the method's signature once per class):

    - ``act_uses_info``: ``act`` takes ``info=`` (the runner passes it only then);
    - ``save_accepts_replay``: ``save(path, include_replay=True)`` stores the replay buffer too;
    - ``scores_uses_info``: ``scores(obs, *, explore=False, info=None)`` rather than
      ``scores(obs)`` (agents that can rank candidates expose ``scores`` or ``q_values``).

    An agent that implements :class:`ContinuesStream` resumes exactly from a checkpoint.
    """

    def learn(self, total_steps: int, callback: StepCallback | None = None) -> Agent: ...

    def act(
        self, obs: np.ndarray, *, explore: bool = False, info: Info | None = None
    ) -> np.ndarray: ...

    def save(self, path: str | Path) -> None: ...

    @classmethod
    def load(cls, path: str | Path, env: Any = None) -> Agent: ...


@runtime_checkable
class Resumable(Protocol):
    """State that a checkpoint stores as plain data and puts back on resume.

    ``state_dict()`` returns nested dicts/lists/tuples of scalars, strings and numpy arrays (no
    objects: checkpoints are written without pickle); ``load_state_dict(state)`` restores it.
    The training env, the metric sinks and every part of the run protocol meet it.
    """

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@runtime_checkable
class ContinuesStream(Protocol):
    """An agent whose next ``learn`` can continue from a given observation.

    Without it, an agent rebuilt by ``load`` resets (re-seeds, re-creates) the env at its next
    ``learn``; with it, the runner restores the env's state and hands back the observation and
    info that came with it, and the stream goes on exactly as if it had never been interrupted.
    """

    def continue_stream(self, obs: np.ndarray, info: Info | None) -> None: ...


@dataclass(frozen=True)
class AgentTraits:
    """What the runner may rely on beyond :class:`Agent` (see its docstring)."""

    act_uses_info: bool
    save_accepts_replay: bool
    scores_uses_info: bool

    @property
    def attributes(self) -> dict[str, bool]:
        return {
            "act_uses_info": self.act_uses_info,
            "save_accepts_replay": self.save_accepts_replay,
            "scores_uses_info": self.scores_uses_info,
        }


def _has_param(func: Any, name: str) -> bool:
    if not callable(func):
        return False
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


_TRAIT_PARAMS = {  # trait -> (method, the parameter that shows it)
    "act_uses_info": ("act", "info"),
    "save_accepts_replay": ("save", "include_replay"),
    "scores_uses_info": ("scores", "info"),
}


_TRAITS: dict[type, AgentTraits] = {}  # per class: resolved once


def _class_traits(cls: type) -> AgentTraits:
    """Walk the MRO: the most derived class that declares the trait or defines the method wins
    (a subclass that overrides ``act`` is judged by its own ``act`` unless it declares)."""
    if cls in _TRAITS:
        return _TRAITS[cls]
    values = {}
    for trait, (method, param) in _TRAIT_PARAMS.items():
        value = False
        for klass in cls.__mro__:
            inferred = klass.__dict__.get("_inferred_traits", ())
            if trait in klass.__dict__ and trait not in inferred:
                value = bool(klass.__dict__[trait])
                break
            if method in klass.__dict__:
                value = _has_param(getattr(cls, method), param)
                break
        values[trait] = value
    _TRAITS[cls] = AgentTraits(**values)
    return _TRAITS[cls]


def agent_traits(agent: Any) -> AgentTraits:
    """The traits of ``agent``'s class: declared class attributes, else its signatures (read once)."""
    return _class_traits(type(agent))


#: ``info[RESET_STEP_KEY]`` (bool ``(B,)``): rows whose step was a NEXT_STEP *reset step* (the
#: step after their episode ended: action ignored, reward 0, the next user's first observation
#: returned). Not a user-step: learners skip those rows, and neither counts nor metrics see them.
RESET_STEP_KEY = "reset_step"


def reset_rows(info: Mapping[str, Any] | None) -> np.ndarray | None:
    """The rows of a step that were reset steps (see :data:`RESET_STEP_KEY`), or ``None`` when
    there were none (always ``None`` under SAME_STEP autoreset)."""
    mask = None if info is None else info.get(RESET_STEP_KEY)
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    return mask if mask.any() else None


def live_rows(info: Mapping[str, Any] | None) -> np.ndarray | None:
    """Indices of the rows that were real user-steps, or ``None`` when all of them were."""
    mask = reset_rows(info)
    return None if mask is None else np.flatnonzero(~mask)


def is_pure_reset(info: Mapping[str, Any] | None) -> bool:
    """Every row of the step was a reset step (no user was served: no transition at all)."""
    mask = reset_rows(info)
    return mask is not None and bool(mask.all())


def user_steps(info: Mapping[str, Any] | None, num_envs: int) -> int:
    """User-steps a vector step counts: ``num_envs`` less its reset steps."""
    mask = reset_rows(info)
    return num_envs if mask is None else num_envs - int(mask.sum())


def take_rows(info: Mapping[str, Any], rows: np.ndarray, num_envs: int) -> Info:
    """``info`` restricted to ``rows`` (arrays with a leading batch axis; other entries as is)."""
    out: Info = {}
    for key, value in info.items():
        if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == num_envs:
            out[key] = value[rows]
        elif isinstance(value, Mapping):
            out[key] = take_rows(value, rows, num_envs)
        else:
            out[key] = value
    return out


def mark_reset_steps(env: Any, info: Info, prev_done: np.ndarray | None) -> Info:
    """Add :data:`RESET_STEP_KEY` for a NEXT_STEP vector env that does not mark its reset steps
    itself (Gymnasium's ``SyncVectorEnv``/``AsyncVectorEnv``): the rows done at the last step."""
    if RESET_STEP_KEY in info or prev_done is None or not prev_done.any():
        return info
    mode = getattr(env, "metadata", {}).get("autoreset_mode")
    if getattr(mode, "value", mode) != "NextStep":
        return info
    return {**info, RESET_STEP_KEY: prev_done}


def final_observations(next_obs: np.ndarray, info: Info) -> np.ndarray:
    """The true last observations of a step under same-step autoreset.

    Users whose session ended get their ``final_obs`` row (a bootstrap target must not see the next
    user's first observation); the others keep ``next_obs``. Returns ``next_obs`` itself (no copy)
    when nobody finished. ``final_obs`` is the simulator's dense ``(B, obs_dim)`` array; an object
    array (Gymnasium's own vector envs) works too.
    """
    mask = info.get("_final_obs")
    if mask is None or not np.any(mask):
        return next_obs
    final = info["final_obs"]
    if final.dtype == object:
        final = np.stack([f if m else o for f, o, m in zip(final, next_obs, mask, strict=True)])
    return np.where(np.asarray(mask)[:, None], final, next_obs)


class OnlineAgent(ABC):
    """Base class with the standard online loop over a vector env.

    Subclasses implement ``act``, ``observe`` (see a batch of transitions) and ``update`` (learn from
    what was observed; return scalars to log such as ``{"train/loss": ...}``). ``save``/``load``
    default to a pickle-free file of ``hyperparameters()`` and ``state_dict()`` (plain data, see
    :mod:`recsim_env.state_io`); agents with torch state override them.

    ``learn`` may be called repeatedly: it continues the same stream (like SB3's
    ``reset_num_timesteps=False``). A subclass whose ``act`` has no ``info`` parameter works too:
    its :class:`AgentTraits` are resolved when the class is created.
    """

    act_uses_info: ClassVar[bool]
    save_accepts_replay: ClassVar[bool]
    scores_uses_info: ClassVar[bool]
    _inferred_traits: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        inferred = set()
        for key, value in _class_traits(cls).attributes.items():
            if key not in cls.__dict__:  # declared in the class body: kept as declared
                setattr(cls, key, value)
                inferred.add(key)
        cls._inferred_traits = frozenset(inferred)

    def __init__(self, env: Any, seed: int | None = None) -> None:
        self.env = env
        self.layout: ObsLayout = get_obs_layout(env)
        self.num_envs: int = int(getattr(env, "num_envs", 1))
        self.action_space = getattr(env, "single_action_space", env.action_space)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.num_timesteps = 0
        self._last_obs: np.ndarray | None = None
        self._last_info: Info | None = None
        self._last_done: np.ndarray | None = None  # for NEXT_STEP envs that do not mark resets

    # ------------------------------------------------------------------ what subclasses write
    @abstractmethod
    def act(
        self, obs: np.ndarray, *, explore: bool = False, info: Info | None = None
    ) -> np.ndarray:
        """Batched action selection."""

    def observe(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        info: Info,
    ) -> None:
        """See one vector step (``next_obs`` already holds final observations of ended sessions).
        Rows marked in ``info[RESET_STEP_KEY]`` (:func:`reset_rows`) were NEXT_STEP reset steps,
        not transitions: learn nothing from them."""

    def update(self) -> dict[str, float]:
        """Learn from what was observed; return scalars to log."""
        return {}

    # ------------------------------------------------------------------ the loop
    def learn(self, total_steps: int, callback: StepCallback | None = None) -> OnlineAgent:
        """Run ``total_steps`` user-steps (a vector step over B users counts B)."""
        if callback is not None:
            callback.on_training_start(self)
        if self._last_obs is None:
            self._last_obs, self._last_info = self.env.reset(seed=self.seed)
        obs, info = self._last_obs, self._last_info
        target = self.num_timesteps + total_steps
        try:
            while self.num_timesteps < target:
                if self.act_uses_info:
                    actions = self.act(obs, explore=True, info=info)
                else:
                    actions = self.act(obs, explore=True)
                step = self.env.step(actions)
                next_obs, rewards, terminated, truncated, next_info = step
                # NEXT_STEP autoreset: rows marked in next_info[RESET_STEP_KEY] were reset steps;
                # observe() skips them, and they are no user-steps (SAME_STEP: none, no cost)
                next_info = mark_reset_steps(self.env, next_info, self._last_done)
                self._last_done = np.logical_or(terminated, truncated)
                if is_pure_reset(next_info):  # nobody was served: nothing to see or count
                    obs, info = self._last_obs, self._last_info = next_obs, next_info
                    continue
                step = (next_obs, rewards, terminated, truncated, next_info)
                final_obs = final_observations(next_obs, next_info)
                self.observe(obs, actions, rewards, final_obs, terminated, truncated, next_info)
                metrics = self.update()
                self.num_timesteps += user_steps(next_info, self.num_envs)
                prev_obs, obs, info = obs, next_obs, next_info
                self._last_obs, self._last_info = obs, info
                if callback is not None and not callback.on_step(
                    Transition.of_step(
                        prev_obs, actions, step, final_obs, self.num_timesteps, metrics
                    )
                ):
                    break
        finally:
            if callback is not None:
                callback.on_training_end()
        return self

    def continue_stream(self, obs: np.ndarray, info: Info | None) -> None:
        """Continue the next ``learn`` from ``obs`` (see :class:`ContinuesStream`)."""
        self._last_obs, self._last_info = obs, info

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (override to add learned state)."""
        return {"num_timesteps": self.num_timesteps, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_timesteps = int(state["num_timesteps"])
        self.rng.bit_generator.state = state["rng"]

    def hyperparameters(self) -> dict[str, Any]:
        """Constructor kwargs, so that ``load`` can rebuild the agent (override if needed)."""
        return dict(getattr(self, "_hparams", {}))

    def save(self, path: str | Path) -> None:
        """Write class name, :meth:`hyperparameters` and :meth:`state_dict` to ``path``.

        The file is a plain data tree (:mod:`recsim_env.state_io`: JSON + ``.npz``, no pickle), so
        loading a checkpoint from an untrusted directory never executes code. Both dicts must be
        plain data (dict/list/tuple/str/int/float/bool/None, numpy arrays and scalars, e.g. a numpy
        RNG's ``bit_generator.state``); anything else is a ``TypeError`` naming the entry.
        """
        save_tree(
            path,
            {
                "format": CHECKPOINT_FORMAT,
                "class": type(self).__qualname__,
                "hparams": self.hyperparameters(),
                "state": self.state_dict(),
            },
        )

    @classmethod
    def load(cls, path: str | Path, env: Any = None) -> OnlineAgent:
        """Rebuild an agent saved by :meth:`save` (of this very class); never unpickles anything.

        Raises :class:`~recsim_env.state_io.CheckpointError` (a ``ValueError`` naming the file)
        when the file is unreadable, is not an agent checkpoint or holds another agent class.
        """
        payload = load_tree(path)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: not an agent checkpoint written by OnlineAgent.save")
        saved = payload.get("class")
        if saved != cls.__qualname__:
            raise CheckpointError(f"{path} holds a {saved} checkpoint, not {cls.__qualname__}")
        hparams, state = payload.get("hparams"), payload.get("state")
        if not isinstance(hparams, dict) or not isinstance(state, dict):
            raise CheckpointError(f"{path}: malformed agent checkpoint (hparams/state)")
        agent = cls(env, **hparams)
        agent.load_state_dict(state)
        return agent
