"""The metric schema: every metric key, its display name, which direction is better, its format.

One namespace for every agent (DESIGN §4). The runner writes these keys (``metrics.csv``,
``summary.json``), the W&B sink declares their goal, ``recsim-tune`` takes its optimisation
direction from here and ``recsim-compare`` its arrows, signs and default tables. A key that is not
listed (e.g. an SB3 logger scalar such as ``train/value_loss``) gets a direction from the words in
its last part (``loss``, ``regret``, ... are lower-is-better), so that the rule is the same for
every reader.

Also here: the labels of a run (``agent``, ``env``, ``drift``) and its human-readable name, derived
once from the config and the Hydra group choices.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["higher", "lower", "neutral"]
# words that make an unlisted key lower-is-better (matched in the part after the last "/")
LOWER_WORDS = ("regret", "loss", "recovery_time", "forgetting")


@dataclass(frozen=True)
class Metric:
    """One metric key. ``direction``: which way is better (``neutral``: a count or a setting)."""

    key: str
    name: str
    direction: Direction
    fmt: str = ".4g"
    final: bool = False  # also reported as ``<key>_final`` (the last window) in summary.json

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "lower"


def _m(key: str, name: str, direction: Direction, fmt: str = ".4g", final: bool = False) -> Metric:
    return Metric(key, name, direction, fmt, final)


ONLINE = (
    _m("online/reward", "reward per user-step (online)", "higher", final=True),
    _m("online/ctr", "clicks per user-step (online)", "higher", final=True),
    _m("online/regret", "regret per user-step (online)", "lower", final=True),
    _m("online/session_length", "session length (online)", "higher", final=True),
    _m("online/cumulative_regret", "cumulative regret", "lower"),
    _m("online/drift_events", "drift events", "neutral", ".0f", final=True),
)
EVAL = (
    _m("eval/return", "session return (eval)", "higher"),
    _m("eval/ctr", "clicks per user-step (eval)", "higher"),
    _m("eval/regret", "regret per user-step (eval)", "lower"),
    _m("eval/ndcg@k", "NDCG@k of the ranking (eval)", "higher"),
)
# experiments.analysis.click_metrics, on the evaluation's fixed batch of candidate sets (the same for
# every agent); ``_ceiling``: the same metric of the ground truth info["click_prob"] on the same
# batch. Click prediction: the agent's click probabilities of every candidate vs the clicks drawn
# from the ground truth (threshold 0.5), only for agents with a click model. Ranking: recall@k of
# those clicks in the agent's ranking of all candidates, for agents that rank. Absent where
# undefined, never made up.
_CLICK: tuple[tuple[str, str, Direction], ...] = (
    ("auc", "click AUC", "higher"),
    ("logloss", "click log-loss", "lower"),
    ("accuracy", "click accuracy", "higher"),
    ("precision", "click precision", "higher"),
    ("recall", "click recall", "higher"),
    ("f1", "click F1", "higher"),
)
_RANKING: tuple[tuple[str, str, Direction], ...] = (
    ("recall@k", "recall@k of the clicks in the ranking of all candidates", "higher"),
)


def _with_ceilings(entries: tuple[tuple[str, str, Direction], ...]) -> tuple[Metric, ...]:
    return tuple(_m(f"eval/{k}", f"{name} (eval)", d) for k, name, d in entries) + tuple(
        _m(f"eval/{k}_ceiling", f"{name} of info['click_prob'] (eval ceiling)", d)
        for k, name, d in entries
    )


CLICK = _with_ceilings(_CLICK)
RANKING = _with_ceilings(_RANKING)
TRAIN = (
    _m("train/loss", "training loss", "lower"),
    _m("train/epsilon", "exploration ε", "neutral"),
    _m("train/lr", "learning rate", "neutral"),
)
TIME = (_m("time/sps", "user-steps per second", "higher", ",.0f"),)
# experiments.run.references (protocol/parts=with_references): the references' eval/return on the
# same evaluation users at every evaluation; the long-term one only where users return
REFERENCE = (
    _m("eval/ref_oracle_return", "myopic oracle's session return (eval, same users)", "neutral"),
    _m("eval/ref_longterm_return", "long-term reference's return (eval, same users)", "neutral"),
)
# experiments.analysis.time_to_good, from a run's eval/return and references (recsim-compare,
# the training benchmark): Kaplan-Meier medians over seeds, censored runs counted
TIME_TO_GOOD = (
    _m("time_to_good/user_steps_km_median", "user-steps to a good policy (KM median)", "lower",
       ",.0f"),
    _m("time_to_good/seconds_km_median", "training seconds to a good policy (KM median)", "lower",
       ",.1f"),
    _m("time_to_good/reached", "runs that reached a good policy", "higher", ".0f"),
    _m("time_to_good/censored", "runs that never reached it (censored)", "lower", ".0f"),
    _m("time_to_good/max_budget_steps", "largest budget (user-steps)", "neutral", ",.0f"),
    _m("time_to_good/max_budget_seconds", "largest budget (training seconds)", "neutral", ",.1f"),
)  # fmt: skip
# experiments.analysis.recovery (RecoveryTracker, fed per vector step by experiments.run.recovery):
# recovery after drift events on ground truth, the share of the myopic oracle's expected reward
_RECOVERY: tuple[tuple[str, str, Direction, str], ...] = (
    ("recovery_time_km_mean", "recovery time (Kaplan–Meier mean)", "lower", ",.0f"),
    ("recovery_time_km_median", "recovery time (Kaplan–Meier median)", "lower", ",.0f"),
    ("recovery_drop", "initial drop after an event (share of pre-event level)", "lower", ".3f"),
    ("recovery_auc", "post-event share of oracle / pre-event level", "higher", ".3f"),
    ("recovered_share", "share of events recovered from", "higher", ".3f"),
    ("recovery_recovered", "events recovered from", "higher", ".0f"),
    ("recovery_censored", "events not recovered from (censored)", "lower", ".0f"),
    ("recovery_undefined", "events without a baseline or a sustain window", "neutral", ".0f"),
    ("recovery_pre_level", "pre-event share of the oracle's expected reward", "higher", ".3f"),
)
RECOVERY = tuple(_m(f"lifelong/{k}", name, d, f) for k, name, d, f in _RECOVERY)
# the same for a frozen copy of the agent at each event (protocol.recovery_counterfactual)
FROZEN_RECOVERY = tuple(
    _m(f"lifelong/frozen_{k}", f"{name}, agent frozen at each event", d, f)
    for k, name, d, f in _RECOVERY
)
# experiments.analysis.lifelong.summarize_lifelong: forgetting on recurring regimes, plasticity
# (computed from the logged windows at the end of the run)
LIFELONG = (
    _m("lifelong/cumulative_regret", "cumulative regret (windows)", "lower"),
    _m("lifelong/num_drift_events", "drift events", "neutral", ".0f"),
    _m("lifelong/forgetting_mean", "forgetting on returning regimes", "lower"),
    _m("lifelong/forgetting_returns", "regime returns", "neutral", ".0f"),
    _m("lifelong/plasticity_per_1k", "reward slope after a change (per 1k)", "higher"),
    _m("lifelong/plasticity_fresh_per_1k", "reward slope in new regimes (per 1k)", "higher"),
)

METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        *ONLINE, *EVAL, *CLICK, *RANKING, *TRAIN, *TIME, *REFERENCE, *TIME_TO_GOOD, *LIFELONG, *RECOVERY,
        *FROZEN_RECOVERY,
    )
}  # fmt: skip

ONLINE_KEYS = tuple(m.key for m in ONLINE)
EVAL_KEYS = tuple(m.key for m in EVAL)
CLICK_KEYS = tuple(m.key for m in CLICK)  # only for agents with a click model
RANKING_KEYS = tuple(m.key for m in RANKING)  # only for agents that rank
TRAIN_KEYS = tuple(m.key for m in TRAIN)
TIME_KEYS = tuple(m.key for m in TIME)
REFERENCE_KEYS = tuple(m.key for m in REFERENCE)  # only with protocol/parts=with_references
TIME_TO_GOOD_KEYS = tuple(m.key for m in TIME_TO_GOOD)  # computed over runs, not by the runner
LIFELONG_KEYS = tuple(m.key for m in LIFELONG)
RECOVERY_KEYS = tuple(m.key for m in RECOVERY)
FROZEN_RECOVERY_KEYS = tuple(m.key for m in FROZEN_RECOVERY)  # only with the counterfactual
SCHEMA = (  # metrics.csv keys
    ONLINE_KEYS + EVAL_KEYS + CLICK_KEYS + RANKING_KEYS + TRAIN_KEYS + TIME_KEYS + REFERENCE_KEYS
)
FINAL_SUFFIX = "_final"

# What each tool shows by default
SUMMARY_TABLE = (  # recsim-train's table at the end of a run
    "online/reward",
    "online/ctr",
    "online/regret",
    "online/session_length",
    "online/cumulative_regret",
    "online/drift_events",
    "online/reward_final",
    "eval/return",
    "eval/ctr",
    "eval/regret",
    "eval/ndcg@k",
    "lifelong/recovery_time_km_mean",
    "lifelong/recovery_drop",
    "lifelong/recovered_share",
    "lifelong/forgetting_mean",
    "time/sps",
)
COMPARE_METRICS = (  # recsim-compare's tables
    "online/reward",
    "online/reward_final",
    "online/cumulative_regret",
    "eval/return",
    "eval/ctr",
    "eval/regret",
    "eval/ndcg@k",
    "eval/recall@k",
    "eval/auc",
    "eval/logloss",
    "eval/f1",
    "lifelong/recovery_time_km_mean",
    "lifelong/recovery_time_km_median",
    "lifelong/recovery_drop",
    "lifelong/recovery_auc",
    "lifelong/recovered_share",
    "lifelong/frozen_recovered_share",
    "lifelong/forgetting_mean",
)
COMPARE_CURVES = ("online/reward", "online/cumulative_regret", "eval/return")
QUICKSTART_COLUMNS = (  # make run's table
    "online/reward",
    "online/regret",
    "online/ctr",
    "online/reward_final",
    "eval/return",
    "eval/ndcg@k",
    "lifelong/recovery_time_km_mean",
    "time/sps",
)


def summary_metric_names() -> list[str]:
    """Keys of ``summary.json`` that ``optimize_metric`` (and ``recsim-tune --metric``) may name."""
    finals = [f"{m.key}{FINAL_SUFFIX}" for m in ONLINE if m.final]
    return [
        *ONLINE_KEYS,
        *finals,
        *EVAL_KEYS,
        *CLICK_KEYS,
        *RANKING_KEYS,
        *TRAIN_KEYS,
        *TIME_KEYS,
        *REFERENCE_KEYS,
        *LIFELONG_KEYS,
        *RECOVERY_KEYS,
        *FROZEN_RECOVERY_KEYS,
    ]


def metric(key: str) -> Metric:
    """The schema entry of ``key``; ``<key>_final`` is ``<key>``'s; unlisted keys by word rule."""
    if key in METRICS:
        return METRICS[key]
    if key.endswith(FINAL_SUFFIX) and key[: -len(FINAL_SUFFIX)] in METRICS:
        base = METRICS[key[: -len(FINAL_SUFFIX)]]
        return Metric(key, f"{base.name}, last window", base.direction, base.fmt)
    leaf = key.rsplit("/", 1)[-1]
    direction: Direction = "lower" if any(w in leaf for w in LOWER_WORDS) else "higher"
    return Metric(key, key, direction)


def lower_is_better(key: str) -> bool:
    return metric(key).lower_is_better


def optimization_direction(key: str) -> Literal["maximize", "minimize"]:
    """Optuna's / W&B's word for the direction of ``key`` (a neutral key is maximised)."""
    return "minimize" if lower_is_better(key) else "maximize"


def arrow(key: str) -> str:
    """``↓`` lower is better, ``↑`` higher is better, ``""`` neither."""
    return {"lower": "↓", "higher": "↑", "neutral": ""}[metric(key).direction]


def better(key: str, *, words: bool = False) -> str:
    """``↑ better`` / ``↓ better`` (``higher is better`` / ``lower is better`` with ``words``)."""
    direction = metric(key).direction
    if direction == "neutral":
        return "neither direction is better" if words else "no direction"
    if words:
        return f"{direction} is better"
    return f"{arrow(key)} better"


def format_value(key: str, value: Any) -> str:
    """``value`` in the key's format; ``n/a`` for a missing or non-finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a" if value is None else str(value)
    if not math.isfinite(value):
        return "n/a"
    return format(value, metric(key).fmt)


def table_rows(summary: Mapping[str, Any], keys: Iterable[str]) -> list[tuple[str, str]]:
    """``(key, formatted value)`` for the keys of ``summary`` that hold a finite number."""
    rows = []
    for key in keys:
        value = summary.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            rows.append((key, format_value(key, value)))
    return rows


# ---------------------------------------------------------------------------------------- labels
LABEL_KEYS = ("agent", "env", "drift")


def _short_target(target: Any) -> str:
    return str(target).rsplit(".", 1)[-1] if target else ""


def run_labels(
    config: Mapping[str, Any], choices: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """``agent``, ``env``, ``drift`` labels of a run: Hydra choices, else derived from the config."""
    choices = dict(choices or {})
    agent_cfg = config.get("agent") or {}
    env_cfg = config.get("env") or {}
    agent = choices.get("agent") or _short_target(agent_cfg.get("_target_")) or "unknown"
    env = choices.get("env") or str(env_cfg.get("id") or "unknown").rsplit("/", 1)[-1]
    drift = (env_cfg.get("kwargs") or {}).get("drift")
    if drift is None:
        drift = "default"
    elif not isinstance(drift, str):
        drift = "custom"
    return {"agent": str(agent), "env": str(env), "drift": drift}


def run_name(
    config: Mapping[str, Any], choices: Mapping[str, Any] | None, job_num: int | None = None
) -> str:
    """``<agent>-<env>-s<seed>`` (``<job>-`` first in a multirun): the name W&B shows."""
    labels = run_labels(config, choices)
    name = f"{labels['agent']}-{labels['env']}-s{config.get('seed')}"
    return f"{job_num}-{name}" if job_num is not None else name
