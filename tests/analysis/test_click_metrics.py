"""Click-prediction metrics: sklearn's documented values, undefined metrics left out, recall@k,
slates, and real evaluations (the click_prob ceiling vs a learned model; no keys without a model)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import recsim_env  # noqa: F401  (registers the env ids)
from agents.baselines import GreedyAgent, LinUCB, OracleAgent, PopularityAgent, RandomAgent
from experiments.analysis.click_metrics import (
    CLICK_METRIC_NAMES,
    ClickPredictionLog,
    click_metrics,
    evaluate_click_prediction,
    recall_at_k,
)

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


def test_log_of_a_slate_labels_every_shown_slot():
    log = ClickPredictionLog(k=1)
    probs = np.array([[0.1, 0.7, 0.2, 0.6], [0.3, 0.2, 0.9, 0.4]])
    actions = np.array([[1, 3], [2, 0]])  # slates of 2
    info = {"clicked": np.array([True, False]), "clicked_position": np.array([1, -1])}
    log.record(probs, actions, info)
    # shown: user 0 → 0.7 (not clicked), 0.6 (clicked, slot 1); user 1 → 0.9, 0.3 (no click)
    out = log.metrics()
    assert out["eval/auc"] == pytest.approx(1 / 3)  # the clicked 0.6 beats 0.3 only, of 3
    assert out["eval/recall@k"] == 0.0  # the clicked candidate 3 is not user 0's top-1
    assert out["eval/accuracy"] == pytest.approx(0.5)  # 0.6 and 0.3 right, 0.7 and 0.9 wrong


def test_log_rejects_mixed_or_invalid_predictions():
    log = ClickPredictionLog()
    info = {"clicked": np.array([True, False])}
    log.record(np.full((2, 3), 0.5), np.array([0, 1]), info)
    with pytest.raises(ValueError, match="returned None at some steps"):
        log.record(None, np.array([0, 1]), info)
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        ClickPredictionLog().record(np.full((2, 3), 1.5), np.array([0, 1]), info)
    with pytest.raises(ValueError, match="k=0"):
        ClickPredictionLog(k=0)


# ---------------------------------------------------------------------------------------- real runs
def evaluated(agent_cls, reward: str = "engagement", learn: int = 4000):
    env = gym.make_vec(ENV, num_envs=16, reward=reward)
    agent = agent_cls(env, seed=0)
    agent.learn(learn)
    eval_env = gym.make_vec(ENV, num_envs=64, reward=reward)
    return evaluate_click_prediction(agent, eval_env, seed=1)


def test_click_prob_ceiling_is_at_least_the_greedy_models_auc_on_the_same_data():
    log = evaluated(GreedyAgent)
    agent, ceiling = log.metrics(), log.ceiling_metrics()
    assert set(agent) == KEYS
    assert set(ceiling) == {f"{key}_ceiling" for key in KEYS}
    assert ceiling["eval/auc_ceiling"] >= agent["eval/auc"] > 0.5  # learned, below the truth
    assert ceiling["eval/logloss_ceiling"] <= agent["eval/logloss"]


@pytest.mark.parametrize(
    ("cls", "reward"),
    [(RandomAgent, "click"), (PopularityAgent, "click"), (LinUCB, "engagement")],
)
def test_no_click_keys_for_agents_without_a_click_model(cls, reward):
    log = evaluated(cls, reward, learn=320)
    assert log.metrics() == {}
    assert "eval/auc_ceiling" in log.ceiling_metrics()  # the data were there


def test_oracle_predictions_are_the_ceiling_and_linucb_on_clicks_gets_keys():
    log = evaluated(OracleAgent, "click", learn=16)
    assert log.metrics() == {
        k.removesuffix("_ceiling"): v for k, v in log.ceiling_metrics().items()
    }
    assert set(evaluated(LinUCB, "click", learn=320).metrics()) == KEYS
