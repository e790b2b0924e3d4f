"""The choice-fidelity scorers: popularity, TruncatedSVD, calibrated and default-simulator models."""

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import TruncatedSVD

from recsim_env.calibrate import baselines as B
from recsim_env.config import SimConfig
from recsim_env.data import InteractionLog
from recsim_env.grounding import Calibration


def _log(click: bool = False) -> InteractionLog:
    rows = [(1, 10), (1, 11), (2, 10), (2, 12), (3, 10), (3, 11), (3, 13), (4, 12)]
    df = pd.DataFrame(rows, columns=["user", "item"])
    df["timestamp"] = np.arange(len(df), dtype=np.int64)
    if click:
        df["click"] = np.array([1, 1, 1, 0, 1, 0, 1, 1], np.int8)
    items = pd.DataFrame(
        {"Action": [1, 0, 1, 0, 0], "Drama": [0, 1, 1, 0, 1]}, index=[10, 11, 12, 13, 14]
    )
    return InteractionLog(df, items, ("Action", "Drama"))


def _calibration() -> Calibration:
    return Calibration(
        name="t",
        item_ids=np.array([12, 10, 11]),
        item_topics=np.array([[1, 0], [0.5, 0.5], [0, 1]], np.float32),
        item_quality=np.zeros(3, np.float32),
        item_appeal=np.array([0.0, 1.0, -1.0], np.float32),
        item_length=np.ones(3, np.float32),
        item_birth=np.zeros(3, np.int64),
        user_ids=np.array([2, 1]),
        user_interest=np.array([[1.0, -1.0], [-0.5, 0.5]], np.float32),
        user_activity=np.array([0.25, 0.75]),
        trajectory=np.zeros((1, 2), np.float32),
        window_ticks=100,
        params={"interest_weight": 2.0, "appeal_weight": 0.5},
        report={},
    )


def test_popularity_counts_positives_only():
    s = B.PopularityScorer().fit(_log()).scores(np.array([1, 9]), np.array([10, 11, 12, 13, 99]))
    np.testing.assert_array_equal(s, [[3, 2, 2, 1, 0]] * 2)
    s = B.PopularityScorer().fit(_log(click=True)).scores(np.array([1]), np.array([10, 11, 12]))
    np.testing.assert_array_equal(s, [[3, 1, 1]])  # click 0 rows are impressions, not choices


def test_svd_is_sklearn_reconstruction():
    log = _log()
    sc = B.SVDScorer(k=2, seed=0).fit(log)
    users, items = np.array([1, 2, 3, 4]), np.array([10, 11, 12, 13])
    x = np.zeros((4, 4))
    x[log.interactions["user"] - 1, log.interactions["item"] - 10] = 1
    svd = TruncatedSVD(2, random_state=0).fit(x)
    np.testing.assert_allclose(
        sc.scores(users, items), svd.transform(x) @ svd.components_, atol=1e-10
    )
    # unknown users / items score 0 (no factors)
    assert np.all(sc.scores(np.array([99]), items) == 0)
    assert np.all(sc.scores(users, np.array([99])) == 0)


def test_calibrated_scorer_is_the_choice_utility():
    cal = _calibration()
    sc = B.CalibratedScorer(cal).fit(_log())
    s = sc.scores(np.array([1, 2, 7]), np.array([10, 11, 12, 99]))
    # user 1 = [-.5, .5], user 2 = [1, -1]; items 10 = [.5,.5] a=1, 11 = [0,1] a=-1, 12 = [1,0] a=0
    assert s[0, 0] == pytest.approx(2 * 0 + 0.5 * 1)
    assert s[0, 1] == pytest.approx(2 * 0.5 - 0.5)
    assert s[1, 2] == pytest.approx(2 * 1)
    # unknown user: activity-weighted mean interest .25·[1,-1] + .75·[-.5,.5] = [-.125, .125]
    assert s[2, 2] == pytest.approx(2 * -0.125)
    assert s[0, 3] == B.UNKNOWN_ITEM_SCORE  # never seen by the calibration: ranked last


def test_default_sim_scorer_uses_categories_default_weights_and_ignores_history():
    log = _log()
    sc = B.DefaultSimScorer(seed=3).fit(log)
    assert sc.topic_source == "categories"
    np.testing.assert_allclose(sc.topics_[sc.items_ == 12][0], [0.5, 0.5])
    np.testing.assert_allclose(sc.topics_[sc.items_ == 13][0], [0.5, 0.5])  # no genre: uniform
    items = np.array([10, 11, 12, 13, 14])
    s = sc.scores(np.array([1, 2, 3]), items)
    cfg = SimConfig()
    u = sc._interest(np.array([1, 2, 3]))
    ref = cfg.interest_weight * u @ sc.topics_[np.searchsorted(sc.items_, items)].T
    ref += cfg.appeal_weight * sc.appeal_[np.searchsorted(sc.items_, items)]
    np.testing.assert_allclose(s, ref)
    # a user's draw depends on (seed, id) only, not on the others scored nor on the history
    np.testing.assert_allclose(sc.scores(np.array([2]), items), s[1:2])
    other = B.DefaultSimScorer(seed=3).fit(
        InteractionLog(log.interactions.iloc[:3], log.items, log.category_columns)
    )
    np.testing.assert_allclose(other.scores(np.array([2]), items), s[1:2])
    assert not np.allclose(B.DefaultSimScorer(seed=4).fit(log).scores(np.array([2]), items), s[1:2])
    # users spread around the population mean with the default user_noise, inside [-1, 1]
    many = sc._interest(np.arange(20_000))
    assert np.all(np.abs(many) <= 1.0)
    inner = np.abs(sc.mean_) < 0.2
    np.testing.assert_allclose(many.std(axis=0)[inner], cfg.user_noise, rtol=0.15)


def test_default_sim_scorer_without_categories_draws_dirichlet_topics():
    log = _log()
    sc = B.DefaultSimScorer(seed=0).fit(InteractionLog(log.interactions))
    assert sc.topic_source == "dirichlet"
    assert sc.topics_.shape == (4, SimConfig().num_topics)
    np.testing.assert_allclose(sc.topics_.sum(axis=1), 1.0)


def test_string_ids_work():
    log = _log()
    df = log.interactions.assign(user=lambda d: "u" + d["user"].astype(str))
    df["item"] = "i" + df["item"].astype(str)
    slog = InteractionLog(df)
    users, items = np.array(["u1", "u3"]), np.array(["i10", "i11", "i13"])
    for sc in (B.PopularityScorer(), B.SVDScorer(k=2), B.DefaultSimScorer()):
        assert sc.fit(slog).scores(users, items).shape == (2, 3)
