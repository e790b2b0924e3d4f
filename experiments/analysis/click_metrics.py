"""Click and ranking metrics that rank agents: every agent scored on the same candidate sets.

Recommender practice evaluates a click model by AUC, log-loss, accuracy, precision, recall and F1
of its predicted click probabilities against clicks, and a ranking by recall@k of the clicked items.
Scored on the items each agent happened to show, neither ranks agents: the data (and so the
ceiling) depend on the agent, and a single-item agent's shown item is its own top-1, so its
recall@k was 1 by construction. Here every evaluated agent is scored on the **same fixed batch**
per evaluation (drawn by :func:`experiments.run.evaluation.draw_fixed_batch`, independent of every
agent's actions): ``N`` candidate sets of the evaluation users, the true click probability
``info["click_prob"]`` of every candidate (the simulator's ground truth) and one click drawn from
it for every candidate (would this user click this item if it were shown; each candidate set can
hold several). The metrics come from scikit-learn (``sklearn.metrics``), never by hand.

Keys (prefix ``eval/``), each beside its **ceiling** ``..._ceiling``: the same metric of the ground
truth ``info["click_prob"]`` on the same batch, the same number for every agent at one evaluation
(what the oracle's ``click_probability`` scores):

- ``recall@k``: the share of the batch's clicks whose candidate is among the agent's ``k``
  highest-ranked candidates of its set (``k = protocol.ndcg_k``; ``top_k_accuracy_score`` with one
  row per click, its tie rule). The ranking is over *all* ``C`` candidates: the agent's click
  probabilities where it has a click model, else its ``scores`` / ``q_values``, else (slate
  agents) the slate it would show, for ``k`` up to the slate size. An agent with none of these
  (or a single item only) gets no key: never a made-up value. Random ranking scores ``≈ k / C``;
  the ceiling (ranking by the true click probability) is below 1 because clicks are random;
- click prediction, only for agents whose ``click_probability(obs, info=info)`` returns ``(B, C)``
  probabilities (:mod:`agents.click_model`; ``None`` = no click model here, e.g. a linear bandit
  on engagement reward: no key): over every candidate of the batch,

  - ``auc``: ``roc_auc_score(clicked, p)``; left out when the data hold one class only;
  - ``logloss``: ``log_loss(clicked, p, labels=[0, 1])`` (mean per candidate);
  - ``accuracy``, ``precision``, ``recall``, ``f1``: of the predictions ``p > 0.5``
    (``THRESHOLD``; ``p == 0.5`` predicts "no click", as ``LogisticRegression.predict`` does),
    with ``zero_division=nan``: precision is left out when nothing is predicted clicked, recall
    when nothing was clicked, F1 when both; accuracy always exists.

In slate mode ``click_prob`` is each item's stand-alone click probability (under the
multinomial-logit choice the slots of a shown slate compete): the batch's clicks are stand-alone
too, the same for every agent.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn import config_context
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    top_k_accuracy_score,
)

__all__ = [
    "CLICK_METRIC_NAMES",
    "THRESHOLD",
    "click_metrics",
    "click_probability_function",
    "fixed_batch_metrics",
    "recall_at_k",
    "recall_at_k_of_clicks",
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


def fixed_batch_metrics(
    click_prob: ArrayLike,
    clicks: ArrayLike,
    ranking: ArrayLike | None,
    probabilities: ArrayLike | None,
    *,
    k: int,
    prefix: str = "eval/",
    suffix: str = "_ceiling",
) -> dict[str, float]:
    """The click and ranking keys of one agent on one fixed evaluation batch (module doc).

    ``click_prob`` ``(N, C)``: the true click probability of every candidate of the batch's ``N``
    candidate sets; ``clicks`` ``(N, C)``: the clicks drawn once from it; ``ranking`` ``(N, C)``:
    the agent's score of every candidate (higher = ranked first), ``None`` if it cannot rank;
    ``probabilities`` ``(N, C)``: its click probabilities, ``None`` without a click model.
    Returns ``recall@k`` (with a ranking) and the click metrics (with a click model), each beside
    its ceiling (the same metric of ``click_prob`` on the same batch, key + ``suffix``).
    """
    truth = _probabilities(click_prob, "click_prob").reshape(np.shape(click_prob))
    y = np.asarray(clicks, dtype=bool)
    if truth.ndim != 2 or y.shape != truth.shape:
        raise ValueError(
            f"click_prob and clicks must be (N, C) alike, got {truth.shape}, {y.shape}"
        )
    out: dict[str, float] = {}
    if ranking is not None:
        recall = recall_at_k_of_clicks(ranking, y, k)
        if math.isfinite(recall):
            out[f"{prefix}recall@k"] = recall
            out[f"{prefix}recall@k{suffix}"] = recall_at_k_of_clicks(truth, y, k)
    if probabilities is not None:
        p = np.asarray(probabilities, dtype=np.float64)
        if p.shape != truth.shape:
            raise ValueError(f"click probabilities must be {truth.shape}, got {p.shape}")
        out.update(click_metrics(p, y, prefix=prefix))
        ceiling = click_metrics(truth, y, prefix=prefix)
        out.update({f"{key}{suffix}": value for key, value in ceiling.items()})
    return out


def recall_at_k_of_clicks(scores: ArrayLike, clicks: ArrayLike, k: int) -> float:
    """Share of all clicks (``clicks`` ``(N, C)``, any number per row) whose candidate is among
    the ``k`` highest ``scores`` of its row (:func:`recall_at_k` with one row per click).
    ``nan`` without any click."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(clicks, dtype=bool)
    if s.shape != y.shape or s.ndim != 2:
        raise ValueError(f"scores and clicks must be (N, C) alike, got {s.shape}, {y.shape}")
    rows, candidate = np.nonzero(y)
    return recall_at_k(s[rows], candidate, k)
