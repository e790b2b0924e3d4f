"""Logged interaction data: a stochastic behaviour policy, the logger, and the ``.npz`` file format.

Offline learning and off-policy evaluation need to know *how likely* the behaviour policy was to
take each logged action, so the behaviour policy must be stochastic and must report its
per-candidate probabilities. :class:`StochasticPolicy` turns any scorer (a baseline's ``scores``,
a DQN's ``q_values``, or a plain function) into one:

    μ(c | s) = (1 − ε) · softmax(score(s, c) / τ) + ε / C          (τ = 0: the greedy one-hot)

:func:`collect_dataset` runs it on a recsim vector env and returns a :class:`LoggedDataset`, which
saves to / loads from one ``.npz`` file (format version :data:`FORMAT_VERSION`):

==================  ============  =======  ====================================================
field               shape         dtype    meaning
==================  ============  =======  ====================================================
obs                 (N, D)        float32  observation the action was chosen on
actions             (N,)          int64    logged candidate index in [0, C)
rewards             (N,)          float32  observed reward
next_obs            (N, D)        float32  next observation; the TRUE last one where the session
                                           ended (never the next user's first observation)
terminated          (N,)          bool     session ended for real (no bootstrap)
truncated           (N,)          bool     session cut by the time limit (bootstrap from next_obs)
propensity          (N,)          float32  μ(actions | obs) of the behaviour policy
behaviour_probs     (N, C)        float32  μ(· | obs), every candidate (rows sum to 1)
clicked             (N,)          bool     whether the user clicked
expected_reward     (N, C)        float32  GROUND TRUTH expected immediate reward of each
                                           candidate in obs (``info["expected_reward"]``). For
                                           evaluating estimators only: never train on it.
metadata            ()            str      JSON: format_version, env_id, env_kwargs, num_envs,
                                           num_vector_steps, seed, policy, layout, fields
==================  ============  =======  ====================================================

Rows are time-major: row ``t * num_envs + e`` is user stream ``e`` at vector step ``t``, so
``reshape(num_vector_steps, num_envs, ...)`` recovers the streams (what n-step targets need).
Single-item mode (``Discrete(C)`` actions) only.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from agents.base import final_observations
from recsim_env.observation import ObsLayout, get_obs_layout

FORMAT_VERSION = 1

# name → (dtype, shape in terms of N (rows), D (obs size), C (candidates))
FIELDS: dict[str, tuple[np.dtype, tuple[str, ...]]] = {
    "obs": (np.dtype(np.float32), ("N", "D")),
    "actions": (np.dtype(np.int64), ("N",)),
    "rewards": (np.dtype(np.float32), ("N",)),
    "next_obs": (np.dtype(np.float32), ("N", "D")),
    "terminated": (np.dtype(np.bool_), ("N",)),
    "truncated": (np.dtype(np.bool_), ("N",)),
    "propensity": (np.dtype(np.float32), ("N",)),
    "behaviour_probs": (np.dtype(np.float32), ("N", "C")),
    "clicked": (np.dtype(np.bool_), ("N",)),
    "expected_reward": (np.dtype(np.float32), ("N", "C")),
}
EVALUATION_ONLY_FIELDS = ("expected_reward",)
METADATA_KEYS = (
    "format_version",
    "env_id",
    "env_kwargs",
    "num_envs",
    "num_vector_steps",
    "seed",
    "policy",
    "layout",
)
_PROB_TOL = 1e-4  # float32 rows of probabilities sum to 1 within this


class DatasetFormatError(ValueError):
    """A dataset file or object does not follow the documented format."""


Scorer = Callable[[np.ndarray], np.ndarray]


def _scorer_of(source: Any) -> tuple[Scorer, str]:
    """``(obs (B, D) → scores (B, C), name)`` from a scoring agent, a DQN or a function."""
    if hasattr(source, "scores"):  # agents.baselines.ScoringAgent
        return (
            lambda obs: np.asarray(source.scores(obs, explore=False, info=None), np.float64),
            type(source).__name__,
        )
    if hasattr(source, "q_values"):  # agents.dqn.DQNAgent
        return lambda obs: np.asarray(source.q_values(obs), np.float64), type(source).__name__
    if callable(source):
        return lambda obs: np.asarray(source(obs), np.float64), getattr(
            source, "__name__", type(source).__name__
        )
    raise TypeError(
        f"{source!r} cannot score candidates: pass a scoring agent (with .scores), a DQNAgent "
        "(with .q_values) or a function obs (B, D) -> scores (B, C)"
    )


def greedy_probs(scores: np.ndarray) -> np.ndarray:
    """One-hot of the argmax per row (ties to the lower index, as the agents' ``act``)."""
    scores = np.asarray(scores)
    out = np.zeros(scores.shape, dtype=np.float64)
    np.put_along_axis(out, np.argmax(scores, axis=-1)[..., None], 1.0, axis=-1)
    return out


def softmax_probs(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of ``scores / temperature`` (``temperature = 0``: :func:`greedy_probs`)."""
    if temperature == 0:
        return greedy_probs(scores)
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class StochasticPolicy:
    """A scorer made stochastic: ``(1 − ε)·softmax(score / τ) + ε / C``.

    ``scorer``: a scoring agent (``scores(obs, explore=False)`` is used: the frozen ranking), a
    ``DQNAgent`` (``q_values``) or a function ``obs (B, D) → (B, C)``. ``temperature = 0`` gives
    the greedy policy (one-hot before the ε mix); ``epsilon = 1`` the uniform one. Sampling uses the
    policy's own generator (``seed``), never the scorer's.
    """

    def __init__(
        self,
        scorer: Any,
        temperature: float = 1.0,
        epsilon: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if not (np.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self._score, self.scorer_name = _scorer_of(scorer)
        self.temperature = float(temperature)
        self.epsilon = float(epsilon)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def probabilities(self, obs: np.ndarray) -> np.ndarray:
        """μ(· | obs) for a batch: ``(B, D)`` → ``(B, C)`` float64, rows sum to 1."""
        obs = np.asarray(obs, dtype=np.float32)
        probs = softmax_probs(self._score(obs), self.temperature)
        if self.epsilon > 0:
            probs = (1.0 - self.epsilon) * probs + self.epsilon / probs.shape[-1]
        return probs

    def sample(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Actions ``(B,)`` drawn from :meth:`probabilities`, and those probabilities ``(B, C)``."""
        probs = self.probabilities(obs)
        cdf = np.cumsum(probs, axis=-1)
        u = self.rng.random((probs.shape[0], 1)) * cdf[:, -1:]
        actions = np.minimum((u >= cdf).sum(axis=-1), probs.shape[-1] - 1)
        # never pick a zero-probability candidate because of rounding at the cdf's edges
        bad = probs[np.arange(len(actions)), actions] <= 0
        if np.any(bad):
            actions[bad] = np.argmax(probs[bad], axis=-1)
        return actions.astype(np.int64), probs

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description (stored in the dataset's metadata)."""
        return {
            "class": type(self).__name__,
            "scorer": self.scorer_name,
            "temperature": self.temperature,
            "epsilon": self.epsilon,
            "seed": self.seed,
        }


@dataclass
class LoggedDataset:
    """Logged transitions of a behaviour policy; see the module docstring for the fields."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    propensity: np.ndarray
    behaviour_probs: np.ndarray
    clicked: np.ndarray
    expected_reward: np.ndarray
    metadata: dict[str, Any]

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def num_envs(self) -> int:
        return int(self.metadata["num_envs"])

    @property
    def num_vector_steps(self) -> int:
        return int(self.metadata["num_vector_steps"])

    @property
    def num_candidates(self) -> int:
        return int(self.behaviour_probs.shape[1])

    @property
    def layout(self) -> ObsLayout:
        """The observation layout of the logging env (rebuilt from the metadata)."""
        return ObsLayout(**self.metadata["layout"])

    def array_fields(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in FIELDS}

    def time_major(self, name: str) -> np.ndarray:
        """Field ``name`` as ``(num_vector_steps, num_envs, ...)`` (a view)."""
        arr = getattr(self, name)
        return arr.reshape(-1, self.num_envs, *arr.shape[1:])

    def make_env(self, num_envs: int | None = None, **overrides: Any) -> Any:
        """A fresh vector env like the logging one (same id and kwargs; not reset)."""
        kwargs = {**self.metadata["env_kwargs"], **overrides}
        kwargs.setdefault("autoreset_mode", "same_step")  # the stream the data was logged as
        return gymnasium.make_vec(
            self.metadata["env_id"], num_envs=num_envs or self.num_envs, **kwargs
        )

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`DatasetFormatError` naming the first field that breaks the format."""
        meta = self.metadata
        if not isinstance(meta, dict):
            raise DatasetFormatError(f"metadata must be a dict, got {type(meta).__name__}")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise DatasetFormatError(
                f"unsupported dataset format_version {version!r}; this code reads version "
                f"{FORMAT_VERSION}"
            )
        missing = [k for k in METADATA_KEYS if k not in meta]
        if missing:
            raise DatasetFormatError(f"metadata is missing key(s) {missing}")
        try:
            layout = self.layout
        except TypeError as exc:
            raise DatasetFormatError(f"metadata['layout'] is invalid: {exc}") from exc
        n = self.actions.shape[0] if isinstance(self.actions, np.ndarray) else -1
        sizes = {"N": n, "D": layout.size, "C": layout.num_candidates}
        for name, (dtype, dims) in FIELDS.items():
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray):
                raise DatasetFormatError(f"field {name!r} must be a numpy array")
            if arr.dtype != dtype:
                raise DatasetFormatError(f"field {name!r} has dtype {arr.dtype}, expected {dtype}")
            expected = tuple(sizes[d] for d in dims)
            if arr.shape != expected:
                raise DatasetFormatError(
                    f"field {name!r} has shape {arr.shape}, expected {expected} "
                    f"({', '.join(dims)} = {', '.join(str(sizes[d]) for d in dims)})"
                )
        if n == 0:
            raise DatasetFormatError("the dataset is empty")
        if n % self.num_envs or n // self.num_envs != int(meta["num_vector_steps"]):
            raise DatasetFormatError(
                f"{n} rows do not match num_envs={self.num_envs} × "
                f"num_vector_steps={meta['num_vector_steps']}"
            )
        if self.actions.min() < 0 or self.actions.max() >= layout.num_candidates:
            raise DatasetFormatError(f"field 'actions' has values outside [0, {sizes['C']})")
        for name in ("obs", "next_obs", "rewards", "expected_reward"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise DatasetFormatError(f"field {name!r} has non-finite values")
        probs = self.behaviour_probs
        if probs.min() < 0 or np.abs(probs.sum(axis=1) - 1.0).max() > _PROB_TOL:
            raise DatasetFormatError(
                "field 'behaviour_probs' must hold probability rows (>= 0, summing to 1)"
            )
        taken = probs[np.arange(n), self.actions]
        if not np.allclose(self.propensity, taken, rtol=1e-6, atol=0):
            raise DatasetFormatError(
                "field 'propensity' differs from behaviour_probs[actions] (fields out of sync)"
            )
        if self.propensity.min() <= 0:
            raise DatasetFormatError("field 'propensity' has logged actions of probability 0")

    # ------------------------------------------------------------------ file format
    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` (compressed); atomic (a crash never leaves half a file)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        meta = {**self.metadata, "fields": {k: [str(d), list(s)] for k, (d, s) in FIELDS.items()}}
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **self.array_fields(), metadata=np.array(json.dumps(meta)))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LoggedDataset:
        """Read and validate a file written by :meth:`save` (no pickles are ever loaded)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                present = set(npz.files)
                missing = [k for k in (*FIELDS, "metadata") if k not in present]
                if missing:
                    raise DatasetFormatError(f"{path}: missing field(s) {missing}")
                arrays = {k: npz[k] for k in FIELDS}
                raw_meta = npz["metadata"]
        except DatasetFormatError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise DatasetFormatError(
                f"{path} is not a readable dataset file ({type(exc).__name__}: {exc})"
            ) from exc
        try:
            meta = json.loads(str(raw_meta[()]))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise DatasetFormatError(f"{path}: metadata is not valid JSON ({exc})") from exc
        if not isinstance(meta, dict):
            raise DatasetFormatError(f"{path}: metadata must be a JSON object")
        meta.pop("fields", None)
        try:
            return cls(**arrays, metadata=meta)
        except DatasetFormatError as exc:
            raise DatasetFormatError(f"{path}: {exc}") from exc


def collect_dataset(
    env: Any,
    policy: StochasticPolicy,
    total_steps: int,
    seed: int | None = 0,
) -> LoggedDataset:
    """Run ``policy`` on a recsim vector env for ``total_steps`` user-steps (rounded up to whole
    vector steps) after ``env.reset(seed=seed)``, and log every transition.

    ``env`` is a ``gymnasium.make_vec(id, num_envs=B, ...)`` env (its id and kwargs go to the
    metadata; a directly constructed ``RecSimVectorEnv`` is logged with ``env_id = None``).
    """
    layout = get_obs_layout(env)
    num_envs = int(env.num_envs)
    if not isinstance(env.single_action_space, gymnasium.spaces.Discrete):
        raise TypeError(
            f"logging supports single-item mode (Discrete actions) only, got "
            f"{env.single_action_space}"
        )
    num_vector_steps = max(1, -(-int(total_steps) // num_envs))
    n, d, c = num_vector_steps * num_envs, layout.size, layout.num_candidates
    buf = {
        name: np.zeros(tuple({"N": n, "D": d, "C": c}[k] for k in dims), dtype=dtype)
        for name, (dtype, dims) in FIELDS.items()
    }
    obs, info = env.reset(seed=seed)
    for t in range(num_vector_steps):
        rows = slice(t * num_envs, (t + 1) * num_envs)
        actions, probs = policy.sample(obs)
        next_obs, rewards, terminated, truncated, next_info = env.step(actions)
        buf["obs"][rows] = obs
        buf["actions"][rows] = actions
        buf["rewards"][rows] = rewards
        buf["next_obs"][rows] = final_observations(next_obs, next_info)
        buf["terminated"][rows] = terminated
        buf["truncated"][rows] = truncated
        buf["behaviour_probs"][rows] = probs
        buf["clicked"][rows] = next_info["clicked"]
        buf["expected_reward"][rows] = info["expected_reward"]
        done = np.logical_or(terminated, truncated)
        if "reset_step" in next_info and done.any():  # NEXT_STEP: log the SAME_STEP stream
            next_obs, started = env.reset(options={"reset_mask": done})
            next_info = {**next_info, **started}
        obs, info = next_obs, next_info
    # propensity from the stored float32 rows, so that the two fields agree exactly
    buf["propensity"] = buf["behaviour_probs"][np.arange(n), buf["actions"]]
    spec = getattr(env, "spec", None)
    env_kwargs = {}
    if spec is not None:
        env_kwargs = {
            k: v
            for k, v in spec.kwargs.items()
            if k not in ("num_envs", "vectorization_mode", "autoreset_mode")
        }
    metadata = {
        "format_version": FORMAT_VERSION,
        "env_id": None if spec is None else spec.id,
        "env_kwargs": env_kwargs,
        "num_envs": num_envs,
        "num_vector_steps": num_vector_steps,
        "seed": seed,
        "policy": policy.describe(),
        "layout": {f.name: getattr(layout, f.name) for f in fields(layout)},
    }
    try:  # fail here, not at save time
        json.dumps(metadata)
    except TypeError as exc:
        raise ValueError(
            f"the env's kwargs must be JSON-serialisable to be logged in the metadata: {exc}"
        ) from exc
    return LoggedDataset(**buf, metadata=metadata)
