"""Click and ranking metrics: sklearn's documented values, undefined metrics left out, recall@k of
the clicks in a ranking of all candidates, and real evaluations on the fixed batch (the click_prob
ceiling vs a learned model; no click keys without a model; the oracle scores the ceiling)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import recsim_env  # noqa: F401  (registers the env ids)
from agents.baselines import GreedyAgent, LinUCB, OracleAgent, PopularityAgent, RandomAgent
from experiments.analysis.click_metrics import (
    CLICK_METRIC_NAMES,
    click_metrics,
    fixed_batch_metrics,
    recall_at_k,
    recall_at_k_of_clicks,
)
from experiments.run.evaluation import evaluate

ENV = "recsim_env/Stationary-v0"
KEYS = {f"eval/{name}" for name in CLICK_METRIC_NAMES}


def test_hand_built_case_matches_sklearns_documented_values():
    # roc_auc_score's docstring example: y = [0, 0, 1, 1], scores [0.1, 0.4, 0.35, 0.8] → 0.75.
    out = click_metrics([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    assert out["eval/auc"] == pytest.approx(0.75)
    # threshold 0.5 → predictions [0, 0, 0, 1]: one true positive, one false negative
    assert out["eval/accuracy"] == pytest.approx(0.75)
    assert out["eval/precision"] == pytest.approx(1.0)
    assert out["eval/recall"] == pytest.approx(0.5)
    assert out["eval/f1"] == pytest.approx(2 / 3)
    expected = -np.mean(np.log([0.9, 0.6, 0.35, 0.8]))
    assert out["eval/logloss"] == pytest.approx(expected)
    # log_loss's docstring example (classes "ham" < "spam": p = P(spam)) → 0.21616...
    spam = click_metrics([0.9, 0.1, 0.2, 0.65], [1, 0, 0, 1], prefix="")
    assert spam["logloss"] == pytest.approx(0.21616187468057912)


def test_threshold_is_strictly_above_one_half():
    out = click_metrics([0.5, 0.5, 0.51], [True, False, True])
    # 0.5 predicts "no click": predictions [0, 0, 1] → accuracy 2/3, precision 1, recall 1/2
    assert out["eval/accuracy"] == pytest.approx(2 / 3)
    assert out["eval/precision"] == 1.0 and out["eval/recall"] == 0.5


def test_one_class_data_leave_undefined_metrics_out():
    none_clicked = click_metrics([0.2, 0.3, 0.1], [False, False, False])
    # AUC undefined with one class; no predicted clicks (precision) and no clicks (recall, F1)
    assert set(none_clicked) == {"eval/logloss", "eval/accuracy"}
    assert none_clicked["eval/accuracy"] == 1.0
    all_clicked = click_metrics([0.9, 0.3], [True, True])
    assert "eval/auc" not in all_clicked
    assert all_clicked["eval/recall"] == 0.5 and all_clicked["eval/precision"] == 1.0
    assert click_metrics([], []) == {}


def test_recall_at_k():
    scores = np.array([[0.9, 0.5, 0.1, 0.3], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    clicked = np.array([1, 0, -1])  # ranks 2 and 4; the third step had no click
    assert recall_at_k(scores, clicked, 1) == 0.0
    assert recall_at_k(scores, clicked, 2) == 0.5
    assert recall_at_k(scores, clicked, 4) == 1.0
    assert np.isnan(recall_at_k(scores, [-1, -1, -1], 2))
    with pytest.raises(ValueError, match="k=0"):
        recall_at_k(scores, clicked, 0)


def test_recall_at_k_counts_every_click_of_a_candidate_set():
    scores = np.array([[0.9, 0.5, 0.1, 0.3], [0.1, 0.2, 0.3, 0.4]])
    clicks = np.array([[True, False, True, False], [False, False, False, True]])
    # clicks: row 0 → candidates 0 (rank 1) and 2 (rank 4); row 1 → candidate 3 (rank 1)
    assert recall_at_k_of_clicks(scores, clicks, 1) == pytest.approx(2 / 3)
    assert recall_at_k_of_clicks(scores, clicks, 3) == pytest.approx(2 / 3)
    assert recall_at_k_of_clicks(scores, clicks, 4) == 1.0
    assert np.isnan(recall_at_k_of_clicks(scores, np.zeros_like(clicks), 2))


def test_fixed_batch_metrics_of_a_known_ranking_and_of_the_truth():
    truth = np.array([[0.8, 0.1, 0.6, 0.2], [0.1, 0.2, 0.3, 0.9]])
    clicks = np.array([[True, False, True, False], [False, True, False, True]])
    ranking = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])  # top-2: {0, 1}, {3, 2}
    out = fixed_batch_metrics(truth, clicks, ranking, None, k=2)
    # clicks 0 (in), 2 (out), 1 (out), 3 (in): 2 of 4; the truth's top-2 {0, 2}, {3, 2}: 3 of 4
    assert out == {"eval/recall@k": 0.5, "eval/recall@k_ceiling": 0.75}
    # a click model: its metrics beside the same metrics of the truth on the same 8 candidates
    probs = np.array([[0.7, 0.2, 0.4, 0.3], [0.2, 0.6, 0.3, 0.1]])
    with_model = fixed_batch_metrics(truth, clicks, probs, probs, k=2)
    assert set(with_model) == KEYS | {f"{k}_ceiling" for k in KEYS}
    assert with_model["eval/auc"] == pytest.approx(roc_auc_score(clicks.ravel(), probs.ravel()))
    assert with_model["eval/auc_ceiling"] == pytest.approx(
        roc_auc_score(clicks.ravel(), truth.ravel())
    )
    assert with_model["eval/recall@k"] == 0.75  # its top-2 {0, 2}, {1, 2}: clicks 0, 2, 1 in
    # no ranking and no click model: no key at all
    assert fixed_batch_metrics(truth, clicks, None, None, k=2) == {}
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        fixed_batch_metrics(truth * 2, clicks, ranking, None, k=2)
    with pytest.raises(ValueError, match="must be \\(2, 4\\)"):
        fixed_batch_metrics(truth, clicks, ranking, probs[:1], k=2)


# ---------------------------------------------------------------------------------------- real runs
def evaluated(agent_cls, reward: str = "engagement", learn: int = 4000) -> dict[str, float]:
    env = gym.make_vec(ENV, num_envs=16, reward=reward)
    agent = agent_cls(env, seed=0)
    agent.learn(learn)
    eval_env = gym.make_vec(ENV, num_envs=64, reward=reward)
    return evaluate(agent, eval_env, seed=1)


def ceilings(metrics: dict[str, float]) -> dict[str, float]:
    return {k.removesuffix("_ceiling"): v for k, v in metrics.items() if k.endswith("_ceiling")}


def test_click_prob_ceiling_is_at_least_the_greedy_models_auc_on_the_same_data():
    out = evaluated(GreedyAgent)
    assert KEYS | {f"{key}_ceiling" for key in KEYS} <= set(out)
    assert out["eval/auc_ceiling"] >= out["eval/auc"] > 0.5  # learned, below the truth
    assert out["eval/logloss_ceiling"] <= out["eval/logloss"]
    # a single-item agent is no longer at 1 by construction: its ranking of all 20 candidates
    assert 0.25 < out["eval/recall@k"] < out["eval/recall@k_ceiling"] < 1.0


@pytest.mark.parametrize(
    ("cls", "reward"),
    [(RandomAgent, "click"), (PopularityAgent, "click"), (LinUCB, "engagement")],
)
def test_no_click_keys_for_agents_without_a_click_model(cls, reward):
    out = evaluated(cls, reward, learn=320)
    assert not KEYS - {"eval/recall@k"} & set(out)
    # they rank, so recall@k is defined for them, beside the same ceiling as any other agent's
    assert "eval/recall@k" in out and "eval/recall@k_ceiling" in out


def test_oracle_predictions_are_the_ceiling_and_linucb_on_clicks_gets_keys():
    out = evaluated(OracleAgent, "click", learn=16)
    agent = {k: v for k, v in out.items() if k.removeprefix("eval/") in CLICK_METRIC_NAMES}
    assert agent == ceilings(out)  # every click and ranking metric of the oracle is its ceiling
    assert set(evaluated(LinUCB, "click", learn=320)) >= KEYS
