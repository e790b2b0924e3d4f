"""Click-prediction metrics: how well an agent's click model predicts the clicks users made.

Recommender practice evaluates a click model by AUC, log-loss, accuracy, precision, recall and F1
of its predicted click probabilities against the actual clicks, and by recall@k of the clicked items
in its ranking. Here they are computed on an evaluation run: for every step of every evaluation
user, the agent's predicted probability for each item it *showed* and whether it was clicked. All
metrics come from scikit-learn (``sklearn.metrics``), never by hand.

Which agents get them (the contract is in :mod:`agents.click_model`): those whose
``click_probability(obs, info=info)`` returns ``(B, C)`` probabilities. An agent without the method,
or whose method returns ``None`` (no click model in this configuration, e.g. a linear bandit on
engagement reward), gets **no** key at all: never a made-up value. The ground truth
``info["click_prob"]`` of the shown items gives the *ceiling* on the same data
(:meth:`ClickPredictionLog.ceiling_metrics`); it is what ``OracleAgent.click_probability`` returns.

Keys (prefix ``eval/`` by default), definitions:

- ``auc``: ``roc_auc_score(clicked, p)``; left out when the data hold one class only (all clicked or
  none clicked: AUC is undefined, not 0.5);
- ``logloss``: ``log_loss(clicked, p, labels=[0, 1])`` (mean per shown item; sklearn clips ``p``
  away from 0 and 1);
- ``accuracy``, ``precision``, ``recall``, ``f1``: of the predictions ``p > 0.5`` (``THRESHOLD``;
  ``p == 0.5`` predicts "no click", as ``LogisticRegression.predict`` does), with
  ``zero_division=nan``: precision is left out when nothing is predicted clicked, recall when
  nothing was clicked, F1 when both; accuracy always exists;
- ``recall@k``: over the steps with a click, the share whose clicked item is among the agent's
  ``k`` highest predicted click probabilities over *all* ``C`` candidates of that step
  (``top_k_accuracy_score`` with the clicked candidate as the label; its tie rule). Single-item
  env: the clicked item is the one shown, so an agent that shows its own most-likely-clicked
  candidate scores 1 by construction; it is informative when what the agent shows is not its
  click ranking (value-based agents on engagement, the ceiling under the engagement oracle) and in
  slate mode for ``k`` below the slate size (is the clicked item in the agent's top-k of its k').
  ``k`` is a setting of the log (``ClickPredictionLog(k=...)``), reported with the key name as is.

Slate mode: every slot of a shown slate is one prediction (the clicked slot labelled 1, the others
0), with the agent's stand-alone click probability of that item. Under the multinomial-logit choice
the slots compete, so even ``info["click_prob"]`` (a stand-alone probability) is not calibrated
there: read slate log-loss as a comparison between agents, not as an absolute.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn import config_context  # type: ignore[import-untyped]
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    top_k_accuracy_score,
)

__all__ = [
    "CLICK_METRIC_NAMES",
    "THRESHOLD",
    "ClickPredictionLog",
    "click_metrics",
    "click_probability_function",
    "evaluate_click_prediction",
    "recall_at_k",
]

THRESHOLD = 0.5
CLICK_METRIC_NAMES = ("auc", "logloss", "accuracy", "precision", "recall", "f1", "recall@k")


def _probabilities(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0.0) or np.any(arr > 1.0):
        bad = arr[~(np.isfinite(arr) & (arr >= 0.0) & (arr <= 1.0))][:3]
        raise ValueError(f"{name} must be probabilities in [0, 1]; got e.g. {bad.tolist()}")
    return arr


def click_metrics(
    probabilities: ArrayLike,
    clicked: ArrayLike,
    *,
    threshold: float = THRESHOLD,
    prefix: str = "eval/",
) -> dict[str, float]:
    """AUC, log-loss, accuracy, precision, recall, F1 of predictions vs clicks (module doc).

    ``probabilities``: predicted click probability of each shown item; ``clicked``: whether it was
    clicked (same number of entries). Undefined metrics are left out; no data → ``{}``.
    """
    p = _probabilities(probabilities, "probabilities")
    y = np.asarray(clicked).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"clicked has {y.size} entries but probabilities has {p.size}")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("clicked must be booleans (or 0/1)")
    if p.size == 0:
        return {}
    y = y.astype(np.int64)
    predicted = (p > threshold).astype(np.int64)
    out: dict[str, float] = {}
    with _checked_inputs():
        if np.unique(y).size == 2:
            out["auc"] = float(roc_auc_score(y, p))
        out["logloss"] = float(log_loss(y, p, labels=[0, 1]))
        out["accuracy"] = float(accuracy_score(y, predicted))
        # precision_score, recall_score and f1_score in one call (one confusion matrix)
        prf = precision_recall_fscore_support(y, predicted, average="binary", zero_division=np.nan)
    for name, value in zip(("precision", "recall", "f1"), prf[:3], strict=True):
        if math.isfinite(float(value)):
            out[name] = float(value)
    return {f"{prefix}{k}": v for k, v in out.items()}


def _checked_inputs() -> Any:
    """scikit-learn without its per-call input validation (finite values, parameter types): the
    inputs were checked here once, and the validation is most of the metrics' cost on the
    evaluation's few thousand predictions (measured: README, "Click prediction")."""
    return config_context(assume_finite=True, skip_parameter_validation=True)


def recall_at_k(scores: ArrayLike, clicked_candidate: ArrayLike, k: int) -> float:
    """Share of clicks whose clicked candidate is in the top ``k`` of ``scores``.

    ``scores`` ``(N, C)``: the agent's predicted click probability of every candidate at each
    step; ``clicked_candidate`` ``(N,)``: the index of the clicked candidate, ``-1`` for no click
    (those rows are left out). ``nan`` when there is no click at all.
    """
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(clicked_candidate, dtype=np.int64).reshape(-1)
    if s.ndim != 2 or s.shape[0] != c.size:
        raise ValueError(f"scores must be (N, C) with N = {c.size} rows, got shape {s.shape}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"invalid k={k!r} (allowed: an integer >= 1)")
    hit = c >= 0
    if not hit.any():
        return float("nan")
    num_candidates = s.shape[1]
    if k >= num_candidates:
        return 1.0  # every candidate is in the top k
    with _checked_inputs():
        return float(
            top_k_accuracy_score(c[hit], s[hit], k=int(k), labels=np.arange(num_candidates))
        )


def click_probability_function(
    agent: Any,
) -> Callable[[np.ndarray, Mapping[str, Any] | None], np.ndarray | None] | None:
    """``(obs, info) -> (B, C) | None`` for an agent with ``click_probability``, else ``None``."""
    fn = getattr(agent, "click_probability", None)
    if not callable(fn):
        return None
    try:
        takes_info = "info" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_info = False
    if takes_info:
        return lambda obs, info: fn(obs, info=info)
    return lambda obs, info: fn(obs)


class ClickPredictionLog:
    """Collects, step by step of an evaluation, what the click metrics need.

    Call :meth:`record` once per vector step with the agent's probabilities for the observation it
    acted on (``None`` when it has no click model), its actions and the step's outcome. Rows of
    users whose evaluation session is over are excluded with ``active``.
    """

    def __init__(self, k: int = 5) -> None:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"invalid k={k!r} (allowed: an integer >= 1)")
        self.k = int(k)
        self._agent: dict[str, list[np.ndarray]] = {"p": [], "y": [], "scores": [], "hit": []}
        self._ceiling: dict[str, list[np.ndarray]] = {"p": [], "y": [], "scores": [], "hit": []}
        self.has_model: bool | None = None  # None until the first record

    @staticmethod
    def _shown(
        probs: np.ndarray, actions: np.ndarray, clicked: np.ndarray, position: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(probability of each shown item, its click label, clicked candidate or -1) per row."""
        rows = np.arange(probs.shape[0])
        if actions.ndim == 1:
            shown = probs[rows, actions]
            return shown, clicked.astype(np.int64), np.where(clicked, actions, -1)
        if position is None:
            raise ValueError("slate mode needs info['clicked_position'] (which slot was clicked)")
        shown = probs[rows[:, None], actions]
        slots = np.arange(actions.shape[1])
        labels = (clicked[:, None] & (slots[None, :] == position[:, None])).astype(np.int64)
        candidate = np.where(clicked, actions[rows, np.clip(position, 0, None)], -1)
        return shown.reshape(-1), labels.reshape(-1), candidate

    @staticmethod
    def _add(store: dict[str, list[np.ndarray]], probs, actions, clicked, position) -> None:
        shown, labels, candidate = ClickPredictionLog._shown(probs, actions, clicked, position)
        store["p"].append(shown)
        store["y"].append(labels)
        store["scores"].append(probs)
        store["hit"].append(candidate)

    def record(
        self,
        probabilities: np.ndarray | None,
        actions: ArrayLike,
        info: Mapping[str, Any],
        *,
        candidate_info: Mapping[str, Any] | None = None,
        active: ArrayLike | None = None,
    ) -> None:
        """One vector step.

        ``probabilities``: the agent's ``(B, C)`` click probabilities for the observation it acted
        on, or ``None``; ``actions``: what it showed, ``(B,)`` or ``(B, k)``; ``info``: the step's
        info (``clicked``, and ``clicked_position`` in slate mode); ``candidate_info``: the info
        that came with the observation (its ``click_prob`` feeds the ceiling; optional);
        ``active``: ``(B,)`` bool, the rows to keep.
        """
        acts = np.asarray(actions, dtype=np.int64)
        clicked = np.asarray(info["clicked"], dtype=bool).reshape(-1)
        position = info.get("clicked_position")
        position = None if position is None else np.asarray(position, dtype=np.int64).reshape(-1)
        keep = (
            np.ones(clicked.size, dtype=bool)
            if active is None
            else np.asarray(active, dtype=bool).reshape(-1)
        )
        acts, clicked = acts[keep], clicked[keep]
        position = None if position is None else position[keep]
        if self.has_model is None:
            self.has_model = probabilities is not None
        elif self.has_model != (probabilities is not None):
            raise ValueError(
                "click_probability returned None at some steps and probabilities at others"
            )
        if probabilities is not None:
            probs = np.asarray(probabilities, dtype=np.float64)
            if probs.ndim != 2 or probs.shape[0] != keep.size:
                raise ValueError(
                    f"click probabilities must be (B, C) with B = {keep.size}, got {probs.shape}"
                )
            _probabilities(probs, "click_probability")
            self._add(self._agent, probs[keep], acts, clicked, position)
        if candidate_info is not None and "click_prob" in candidate_info:
            truth = np.asarray(candidate_info["click_prob"], dtype=np.float64)[keep]
            self._add(self._ceiling, truth, acts, clicked, position)

    @staticmethod
    def _metrics(store: dict[str, list[np.ndarray]], k: int, prefix: str) -> dict[str, float]:
        if not store["p"]:
            return {}
        out = click_metrics(np.concatenate(store["p"]), np.concatenate(store["y"]), prefix=prefix)
        recall = recall_at_k(np.concatenate(store["scores"]), np.concatenate(store["hit"]), k)
        if math.isfinite(recall):
            out[f"{prefix}recall@k"] = recall
        return out

    def metrics(self, prefix: str = "eval/") -> dict[str, float]:
        """The agent's click metrics; ``{}`` when it has no click model (or nothing recorded)."""
        return self._metrics(self._agent, self.k, prefix)

    def ceiling_metrics(self, prefix: str = "eval/", suffix: str = "_ceiling") -> dict[str, float]:
        """The same metrics for ``info["click_prob"]`` on the same shown items: the ceiling.

        Keys are the agent's with ``suffix`` (``eval/auc_ceiling``, ...), so both fit in one
        summary; ``{}`` when no ``candidate_info`` with ``click_prob`` was recorded.
        """
        raw = self._metrics(self._ceiling, self.k, prefix)
        return {f"{key}{suffix}": value for key, value in raw.items()}


def evaluate_click_prediction(
    agent: Any, env: Any, *, seed: int, k: int = 5, max_steps: int = 1_000_000
) -> ClickPredictionLog:
    """Greedy evaluation (one session per user of the vector ``env``, from ``reset(seed)``, as the
    protocol's ``evaluate`` runs it) recording the agent's click predictions and the ceiling."""
    log = ClickPredictionLog(k=k)
    predict = click_probability_function(agent)
    obs, info = env.reset(seed=seed)
    active = np.ones(int(env.num_envs), dtype=bool)
    for _ in range(max_steps):
        actions = agent.act(obs, explore=False, info=info)
        probs = predict(obs, info) if predict is not None else None
        next_obs, _, terminated, truncated, next_info = env.step(actions)
        log.record(probs, actions, next_info, candidate_info=info, active=active)
        active &= ~np.logical_or(terminated, truncated)
        obs, info = next_obs, next_info
        if not active.any():
            return log
    raise RuntimeError(f"evaluation sessions did not end within {max_steps} steps")
