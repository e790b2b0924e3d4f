"""Off-policy evaluation (OPE) of a target policy's per-step expected reward from logged data.

Given logged ``(s_i, a_i, r_i)`` with behaviour propensities ``μ(a_i | s_i)`` and a target policy
``π(· | s)`` over the candidates, with importance weights ``w_i = π(a_i | s_i) / μ(a_i | s_i)``:

* **IPS** (inverse propensity scoring): ``V̂ = mean(w_i r_i)`` — unbiased, high variance.
* **SNIPS** (self-normalised IPS): ``V̂ = Σ w_i r_i / Σ w_i`` — slightly biased, lower variance.
* **DM** (direct method): ``V̂ = mean(Σ_c π(c | s_i) r̂(s_i, c))`` — a reward model's guess.
* **DR** (doubly robust, Dudík et al. 2011):
  ``V̂ = mean(Σ_c π(c | s_i) r̂(s_i, c) + w_i (r_i − r̂(s_i, a_i)))`` — unbiased if either μ or r̂
  is right, and lower variance than IPS when r̂ is good.

The reward model r̂ is a ridge regression on the candidate context φ(candidate, user) that the
linear bandits use (:class:`agents.baselines.LinearFeatures`), fit on the logged data, by default
cross-fitted (each transition is predicted by a model fit without its own user stream).

What is estimated is the **one-step** value: the expected immediate reward of π on the states the
*behaviour* policy visited. It ignores long-term effects: a policy that exhausts users (fatigue,
shorter sessions) or shapes their interests visits other states online, and OPE of one-step reward
does not see that. It is the right tool for myopic (bandit-like) policies and for ranking scorers.

Standard errors come from a bootstrap over user **sessions** (transitions of one session are
correlated: same user, same fatigue), or over transitions with ``bootstrap="transition"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.baselines.features import LinearFeatures
from agents.offline.dataset import LoggedDataset, StochasticPolicy

TargetPolicy = np.ndarray | StochasticPolicy | Callable[[np.ndarray], np.ndarray]
BOOTSTRAP_UNITS = ("session", "transition")
_CHUNK = 4096  # rows per block when scoring all candidates (bounds memory)


@dataclass(frozen=True)
class OPEEstimate:
    """One estimate of the target policy's per-step expected reward."""

    name: str
    value: float
    stderr: float  # bootstrap standard error
    num_samples: int  # logged transitions used
    effective_sample_size: float  # (Σ w)² / Σ w², Kish's ESS of the importance weights

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """Normal-approximation confidence interval ``value ± z · stderr``."""
        return self.value - z * self.stderr, self.value + z * self.stderr


# ---------------------------------------------------------------------------------- targets
def target_probabilities(dataset: LoggedDataset, target: TargetPolicy) -> np.ndarray:
    """π(· | s_i) for every logged state: ``(N, C)`` float64, validated.

    ``target``: an ``(N, C)`` array, a :class:`StochasticPolicy` (its ``probabilities``; use
    ``temperature=0`` for a deterministic greedy policy) or a function ``obs (B, D) → (B, C)``.
    """
    if isinstance(target, np.ndarray):
        probs = np.asarray(target, dtype=np.float64)
    else:
        fn = target.probabilities if hasattr(target, "probabilities") else target
        probs = np.concatenate(
            [
                np.asarray(fn(dataset.obs[i : i + _CHUNK]), dtype=np.float64)
                for i in range(0, len(dataset), _CHUNK)
            ]
        )
    expected = (len(dataset), dataset.num_candidates)
    if probs.shape != expected:
        raise ValueError(f"target probabilities have shape {probs.shape}, expected {expected}")
    if probs.min() < 0 or np.abs(probs.sum(axis=1) - 1.0).max() > 1e-4:
        raise ValueError("target probabilities must be rows >= 0 that sum to 1")
    return probs


def importance_weights(dataset: LoggedDataset, target_probs: np.ndarray) -> np.ndarray:
    """``w_i = π(a_i | s_i) / μ(a_i | s_i)``, ``(N,)`` float64."""
    taken = target_probs[np.arange(len(dataset)), dataset.actions]
    return taken / dataset.propensity.astype(np.float64)


# ---------------------------------------------------------------------------------- reward model
class RidgeRewardModel:
    """``r̂(s, c) = θ·φ(s, c)``: ridge regression of the logged reward on the bandits' context φ."""

    def __init__(self, layout: Any, reg: float = 1.0, user_features: bool = True) -> None:
        if not reg > 0:
            raise ValueError(f"reg must be > 0, got {reg}")
        self.features = LinearFeatures(layout, user_features=user_features)
        self.reg = float(reg)
        self.theta = np.zeros(self.features.dim)

    def fit(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> RidgeRewardModel:
        x = self.features.chosen(obs, actions)
        y = np.asarray(rewards, dtype=np.float64)
        gram = x.T @ x + self.reg * np.eye(x.shape[1])
        self.theta = np.linalg.solve(gram, x.T @ y)
        return self

    def predict(self, obs: np.ndarray) -> np.ndarray:
        """Predicted reward of every candidate, ``(N, C)``."""
        return np.concatenate(
            [
                self.features.all_candidates(obs[i : i + _CHUNK]) @ self.theta
                for i in range(0, len(obs), _CHUNK)
            ]
        )


def _folds(dataset: LoggedDataset, k: int) -> np.ndarray:
    """Fold of every row: by user stream when there are enough streams (a session never straddles
    two folds), else by contiguous blocks of vector steps."""
    n, b = len(dataset), dataset.num_envs
    if b >= k:
        return np.tile(np.arange(b) % k, n // b)
    steps = n // b
    return np.repeat(np.minimum(np.arange(steps) * k // steps, k - 1), b)


def fit_reward_predictions(
    dataset: LoggedDataset, cross_fit: int = 2, reg: float = 1.0, user_features: bool = True
) -> np.ndarray:
    """r̂(s_i, c) for every logged state and candidate, ``(N, C)``; with ``cross_fit = k ≥ 2`` each
    row is predicted by a model fit on the other ``k − 1`` folds (no overfitting bias in DR)."""
    layout = dataset.layout
    if cross_fit < 2:
        model = RidgeRewardModel(layout, reg, user_features)
        return model.fit(dataset.obs, dataset.actions, dataset.rewards).predict(dataset.obs)
    folds = _folds(dataset, int(cross_fit))
    out = np.empty((len(dataset), dataset.num_candidates))
    for f in range(int(cross_fit)):
        test = folds == f
        train = ~test
        model = RidgeRewardModel(layout, reg, user_features)
        model.fit(dataset.obs[train], dataset.actions[train], dataset.rewards[train])
        out[test] = model.predict(dataset.obs[test])
    return out


# ---------------------------------------------------------------------------------- bootstrap
def session_ids(dataset: LoggedDataset) -> np.ndarray:
    """A session id per row (``(N,)`` int64): transitions of one user's session share it."""
    ends = dataset.time_major("terminated") | dataset.time_major("truncated")  # (T, B)
    t, b = ends.shape
    # per stream: sessions counted by the ends strictly before each step
    before = np.cumsum(ends, axis=0) - ends
    per_stream = before.max(axis=0) + 1
    offsets = np.concatenate([[0], np.cumsum(per_stream)[:-1]])
    return (before + offsets[None, :]).reshape(-1).astype(np.int64)


def _ratio_bootstrap(
    num: np.ndarray,
    den: np.ndarray,
    clusters: np.ndarray | None,
    n_bootstrap: int,
    rng: np.random.Generator,
) -> float:
    """Bootstrap standard error of ``Σ num / Σ den``, resampling clusters (or rows)."""
    if clusters is not None:
        num = np.bincount(clusters, weights=num)
        den = np.bincount(clusters, weights=den)
    m = len(num)
    counts = rng.multinomial(m, np.full(m, 1.0 / m), size=n_bootstrap).astype(np.float64)
    stats = (counts @ num) / (counts @ den)
    return float(np.std(stats, ddof=1))


def _estimate(
    name: str,
    dataset: LoggedDataset,
    num: np.ndarray,
    den: np.ndarray,
    weights: np.ndarray,
    bootstrap: str,
    n_bootstrap: int,
    seed: int | None,
) -> OPEEstimate:
    if bootstrap not in BOOTSTRAP_UNITS:
        raise ValueError(f"bootstrap must be one of {BOOTSTRAP_UNITS}, got {bootstrap!r}")
    clusters = session_ids(dataset) if bootstrap == "session" else None
    rng = np.random.default_rng(seed)
    stderr = _ratio_bootstrap(num, den, clusters, n_bootstrap, rng) if n_bootstrap > 1 else np.nan
    sq = float(np.sum(weights**2))
    return OPEEstimate(
        name=name,
        value=float(num.sum() / den.sum()),
        stderr=stderr,
        num_samples=len(dataset),
        effective_sample_size=float(weights.sum() ** 2 / sq) if sq > 0 else 0.0,
    )


# ---------------------------------------------------------------------------------- estimators
def ips(
    dataset: LoggedDataset,
    target: TargetPolicy,
    *,
    self_normalized: bool = False,
    bootstrap: str = "session",
    n_bootstrap: int = 200,
    seed: int | None = 0,
) -> OPEEstimate:
    """IPS estimate (``self_normalized=True``: SNIPS) with bootstrap standard error."""
    probs = target_probabilities(dataset, target)
    w = importance_weights(dataset, probs)
    num = w * dataset.rewards
    den = w if self_normalized else np.ones_like(w)
    name = "snips" if self_normalized else "ips"
    return _estimate(name, dataset, num, den, w, bootstrap, n_bootstrap, seed)


def direct_method(
    dataset: LoggedDataset,
    target: TargetPolicy,
    *,
    reward_predictions: np.ndarray | None = None,
    cross_fit: int = 2,
    reg: float = 1.0,
    bootstrap: str = "session",
    n_bootstrap: int = 200,
    seed: int | None = 0,
) -> OPEEstimate:
    """DM estimate ``mean(Σ_c π(c|s) r̂(s, c))`` (bootstrap ignores the model's own error)."""
    probs = target_probabilities(dataset, target)
    pred = _predictions(dataset, reward_predictions, cross_fit, reg)
    num = np.sum(probs * pred, axis=1)
    w = importance_weights(dataset, probs)
    return _estimate("dm", dataset, num, np.ones_like(num), w, bootstrap, n_bootstrap, seed)


def doubly_robust(
    dataset: LoggedDataset,
    target: TargetPolicy,
    *,
    reward_predictions: np.ndarray | None = None,
    cross_fit: int = 2,
    reg: float = 1.0,
    bootstrap: str = "session",
    n_bootstrap: int = 200,
    seed: int | None = 0,
) -> OPEEstimate:
    """DR estimate with a ridge reward model (``reward_predictions``: your own ``(N, C)`` r̂)."""
    probs = target_probabilities(dataset, target)
    pred = _predictions(dataset, reward_predictions, cross_fit, reg)
    w = importance_weights(dataset, probs)
    rows = np.arange(len(dataset))
    num = np.sum(probs * pred, axis=1) + w * (dataset.rewards - pred[rows, dataset.actions])
    return _estimate("dr", dataset, num, np.ones_like(num), w, bootstrap, n_bootstrap, seed)


def estimate_all(
    dataset: LoggedDataset,
    target: TargetPolicy,
    *,
    cross_fit: int = 2,
    reg: float = 1.0,
    bootstrap: str = "session",
    n_bootstrap: int = 200,
    seed: int | None = 0,
) -> dict[str, OPEEstimate]:
    """IPS, SNIPS, DM and DR of one target on one dataset (the reward model is fit once)."""
    probs = target_probabilities(dataset, target)
    pred = fit_reward_predictions(dataset, cross_fit, reg)
    common = dict(bootstrap=bootstrap, n_bootstrap=n_bootstrap, seed=seed)
    return {
        "ips": ips(dataset, probs, **common),
        "snips": ips(dataset, probs, self_normalized=True, **common),
        "dm": direct_method(dataset, probs, reward_predictions=pred, **common),
        "dr": doubly_robust(dataset, probs, reward_predictions=pred, **common),
    }


def _predictions(
    dataset: LoggedDataset, given: np.ndarray | None, cross_fit: int, reg: float
) -> np.ndarray:
    if given is None:
        return fit_reward_predictions(dataset, cross_fit, reg)
    given = np.asarray(given, dtype=np.float64)
    if given.shape != (len(dataset), dataset.num_candidates):
        raise ValueError(
            f"reward_predictions have shape {given.shape}, expected "
            f"{(len(dataset), dataset.num_candidates)}"
        )
    return given


# ---------------------------------------------------------------------------------- ground truth
def logged_context_value(dataset: LoggedDataset, target: TargetPolicy) -> float:
    """GROUND TRUTH (evaluation only): ``mean(Σ_c π(c | s_i) · expected_reward(s_i, c))`` on the
    logged states — exactly what the estimators above estimate, from the simulator's truth."""
    probs = target_probabilities(dataset, target)
    return float(np.mean(np.sum(probs * dataset.expected_reward, axis=1)))


def online_value(
    env: Any, policy: StochasticPolicy, total_steps: int, seed: int | None = 0
) -> float:
    """GROUND TRUTH (evaluation only): run ``policy`` online on ``env`` (reset with ``seed``) for
    ``total_steps`` user-steps and return the mean expected immediate reward of its choices,
    ``mean(Σ_c π(c | s) · info["expected_reward"](s, c))`` over the states *it* visits (for a
    deterministic policy: the mean ``expected_reward`` of the chosen candidates)."""
    obs, info = env.reset(seed=seed)
    num_vector_steps = max(1, -(-int(total_steps) // env.num_envs))
    total = 0.0
    for _ in range(num_vector_steps):
        actions, probs = policy.sample(obs)
        total += float(np.mean(np.sum(probs * info["expected_reward"], axis=1)))
        obs, _, _, _, info = env.step(actions)
    return total / num_vector_steps
