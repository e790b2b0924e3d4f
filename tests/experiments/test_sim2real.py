"""Sim-to-real scoring (experiments/sim2real.py) on hand-made cases and a synthetic
calibration (no real data): the metrics against scikit-learn, tie counting, the rows against what the
calibrated env itself shows, and the whole path from a trained run dir to a score."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

import recsim_env  # noqa: F401 — registers the ids
from experiments import sim2real as s2r
from recsim_env.data import InteractionLog
from recsim_env.grounding import clear_calibration_cache, synthetic_calibration

ROOT = Path(__file__).resolve().parents[2]
C = 20  # the env's default num_candidates


# ---------------------------------------------------------------------------------------- metrics
def test_oracle_and_reversed_rankers():
    rng = np.random.default_rng(0)
    positive = rng.integers(0, C, 50)
    oracle = rng.random((50, C))
    oracle[np.arange(50), positive] = 2.0  # above everything
    m = s2r.rank_metrics(oracle, positive, ks=(1, 5, 10))
    for name in ("recall@1", "recall@10", "ndcg@10", "auc"):
        assert np.all(m[name] == 1.0), name
    reversed_ = -oracle
    m = s2r.rank_metrics(reversed_, positive, ks=(1, 5, 10))
    for name in ("recall@1", "recall@10", "ndcg@10", "auc"):
        assert np.all(m[name] == 0.0), name


def test_metrics_match_sklearn_with_ties():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, (200, 8)).astype(float)  # many ties
    positive = rng.integers(0, 8, 200)
    m = s2r.rank_metrics(scores, positive, ks=(1, 3, 8))
    onehot = np.zeros_like(scores)
    onehot[np.arange(200), positive] = 1.0
    for r in range(200):
        assert m["auc"][r] == pytest.approx(roc_auc_score(onehot[r], scores[r]))
        for k in (1, 3, 8):  # sklearn averages the gains of tied items: the expectation
            ref = ndcg_score(onehot[r : r + 1], scores[r : r + 1], k=k)
            assert m[f"ndcg@{k}"][r] == pytest.approx(ref), (r, k)


def test_recall_ties_are_the_expectation_over_tie_orders():
    scores = np.array([[3.0, 1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    positive = np.array([1, 4])
    m = s2r.rank_metrics(scores, positive, ks=(1, 2, 3))
    for r in range(2):  # enumerate every order of the tied candidates
        orders = list(itertools.permutations(range(5)))
        ranks = []
        for order in orders:
            tiebreak = np.empty(5)
            tiebreak[list(order)] = np.arange(5) * 1e-3
            rank = 1 + np.sum(scores[r] + tiebreak > scores[r, positive[r]] + tiebreak[positive[r]])
            ranks.append(rank)
        for k in (1, 2, 3):
            assert m[f"recall@{k}"][r] == pytest.approx(np.mean(np.array(ranks) <= k))
    assert m["recall@1"][0] == 0.0 and m["recall@2"][0] == pytest.approx(1 / 3)


def test_per_user_mean_weighs_users_equally():
    ids, means = s2r.per_user_mean(np.array([1.0, 0.0, 0.0, 1.0]), np.array([7, 7, 7, 3]))
    assert ids.tolist() == [3, 7] and means.tolist() == [1.0, pytest.approx(1 / 3)]


def test_ema_weights_are_the_simulators_update():
    codes = np.array([0, 1, 0, 0, 1])
    w = s2r._ema_weights(codes, 0.8)
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    for u in (0, 1):
        h = 0.0
        for v in x[codes == u]:
            h = 0.8 * h + 0.2 * v
        assert np.sum(w[codes == u] * x[codes == u]) == pytest.approx(h)


# ---------------------------------------------------------------------------------------- rows
@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    cal = synthetic_calibration(
        num_items=80, num_topics=5, num_users=12, num_windows=3, window_ticks=20, seed=3
    )
    path = cal.save(tmp_path_factory.mktemp("cal") / "synthetic")
    clear_calibration_cache()
    env = gymnasium.make("recsim_env/MovieLens-v0", calibration=str(path))
    yield cal, str(path), env
    env.close()


def _log(cal, seed=0, per_user=8, extra_item=None):
    """A consumption log of the calibration's users and items: each user's first 6 rows = train."""
    rng = np.random.default_rng(seed)
    rows = []
    for j, u in enumerate(cal.user_ids[:6].tolist()):
        items = rng.choice(cal.item_ids, size=per_user, replace=False).tolist()
        for t, i in enumerate(items):
            rows.append((u, i, 1000 * j + t))
    if extra_item is not None:
        rows.append((cal.user_ids[0].item(), extra_item, 10**6))
    df = pd.DataFrame(rows, columns=["user", "item", "timestamp"]).sort_values(
        ["timestamp", "user", "item"], kind="stable"
    )
    df = df.reset_index(drop=True)
    rank = df.groupby("user").cumcount()
    train = InteractionLog(df[rank < 6].reset_index(drop=True), name="t/train")
    test = InteractionLog(df[rank >= 6].reset_index(drop=True), name="t/test")
    return train, test


def test_rows_layout_candidates_and_history(calibrated):
    cal, _, env = calibrated
    train, test = _log(cal, extra_item=999_999)  # a held-out item outside the catalogue
    rows = s2r.build_rows(train, test, env, seed=5, neutral_steps=20)
    layout = rows.layout
    assert rows.obs.shape == (len(rows), env.observation_space.shape[0]) == (len(rows), layout.size)
    assert len(rows) == 12 and rows.info["dropped_test_rows_item_not_in_catalogue"] == 1
    tr, te = train.interactions, test.interactions
    for r in range(len(rows)):
        u = rows.users[r]
        held = rows.item_ids[r, rows.positive[r]]
        assert ((te.user == u) & (te.item == held)).any()
        mine = set(tr.item[tr.user == u]) | set(te.item[te.user == u])
        others = np.delete(rows.item_ids[r], rows.positive[r])
        assert not mine & set(others.tolist()) and len(set(others.tolist())) == C - 1
    # history: the simulator's EMA of the user's training items' topics, in time order
    cat, _ = s2r.catalogue_at(env, rows.info["clock"])
    slot = {v: i for i, v in enumerate(cat.item_ids.tolist())}
    d = env.unwrapped.config.history_decay
    u = rows.users[0]
    h = np.zeros(cal.num_topics)
    for item in tr.item[tr.user == u]:
        h = d * h + (1 - d) * cat.topics[slot[item]]
    user = layout.split(rows.obs[0])[1]
    np.testing.assert_allclose(user[layout.user_slice("history")], h, rtol=1e-5)
    assert user[layout.user_slice("ctr")][0] == pytest.approx(rows.info["neutral"]["ctr"])
    # positions of the held-out item are spread (no agent profits from a position)
    assert len(set(rows.positive.tolist())) > 3


def test_rows_show_the_features_the_calibrated_env_shows(calibrated):
    """Item features equal those the calibrated env puts in its own observation for the same item
    ids at the same clock (here: clock 0 after reset(seed=4))."""
    cal, path, env = calibrated
    train, test = _log(cal)
    rows = s2r.build_rows(train, test, env, seed=1, clock=0, world_seed=4, neutral_steps=5)
    venv = gymnasium.make_vec("recsim_env/MovieLens-v0", num_envs=8, calibration=path)
    obs, info = venv.reset(seed=4)
    layout = rows.layout
    shown = {}
    items = layout.split(obs)[0]
    for b in range(8):
        for c in range(C):
            shown[info["item_id"][b, c].item()] = items[b, c]
    ours = layout.split(rows.obs)[0]
    compared = 0
    for r in range(len(rows)):
        for c in range(C):
            item = rows.item_ids[r, c].item()
            if item in shown:
                np.testing.assert_array_equal(ours[r, c], shown[item])
                compared += 1
    assert compared > 20
    venv.close()


def test_oracle_reversed_and_non_ranking_agents_on_rows(calibrated):
    cal, _, env = calibrated
    train, test = _log(cal)
    rows = s2r.build_rows(train, test, env, seed=2, neutral_steps=5)
    pos = {r.tobytes(): p for r, p in zip(rows.obs, rows.positive, strict=True)}

    def oracle(obs):  # knows which candidate was held out
        out = np.zeros((len(obs), C))
        out[np.arange(len(obs)), [pos[o.tobytes()] for o in obs]] = 1.0
        return out

    good = s2r.score(oracle, rows)
    assert good["real/recall@1"] == good["real/recall@10"] == good["real/auc"] == 1.0
    bad = s2r.score(lambda o: -oracle(o), rows)
    assert bad["real/recall@10"] == bad["real/auc"] == 0.0

    class Chooser:  # an agent that can only act: its choice at rank 1, the rest tied
        def __init__(self, right):
            self.right, self.action_space = right, gymnasium.spaces.Discrete(C)

        def act(self, obs, *, explore=False):
            chosen = np.array([pos[o.tobytes()] for o in obs])
            return chosen if self.right else (chosen + 1) % C

    right = s2r.score_agent(Chooser(True), rows)
    assert right["real/recall@1"] == 1.0 and right["real/auc"] == 1.0
    wrong = s2r.score_agent(Chooser(False), rows)
    assert wrong["real/recall@1"] == 0.0
    assert wrong["real/recall@10"] == pytest.approx(9 / 19)  # rank uniform on 2..20
    assert wrong["real/auc"] == pytest.approx(0.5 * 18 / 19)


def test_log_popularity_reference(calibrated):
    cal, _, env = calibrated
    train, test = _log(cal)
    rows = s2r.build_rows(train, test, env, seed=3, neutral_steps=5)
    scorer = s2r.log_popularity_scorer(train, rows)
    counts = train.interactions["item"].value_counts()
    expected = np.array([[counts.get(i, 0) for i in row] for row in rows.item_ids.tolist()])
    np.testing.assert_array_equal(scorer(rows.obs[:5]), expected[:5])
    np.testing.assert_array_equal(scorer(rows.obs[5:]), expected[5:])


def test_a_trained_run_dir_is_loaded_and_scored(calibrated, tmp_path):
    """End to end through the real runner: recsim-train (Hydra) on the calibrated env, then the
    agent loaded from the run's checkpoint scores the rows exactly as the live agent would."""
    cal, path, env = calibrated
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "experiments.train",
        "env=movielens",
        f"env.kwargs.calibration={path}",
        "env.num_envs=4",
        "agent=linucb",
        "protocol=tiny",
        "logger=csv",
        "progress=false",
        f"hydra.run.dir={run}",
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    agent, train_env, summary = s2r.load_run_agent(run)
    assert "eval/return" in summary
    train, test = _log(cal)
    rows = s2r.build_rows(train, test, env, seed=0, neutral_steps=5)
    res = s2r.score_agent(agent, rows)
    direct = s2r.score(lambda o: agent.scores(o, explore=False, info=None), rows)
    assert res["real/auc"] == direct["real/auc"]
    assert 0.0 <= res["real/recall@10"] <= 1.0 and res["users"] == 6
    train_env.close()
    json.dumps({k: v for k, v in res.items() if k != "per_user"})  # plain numbers


@pytest.mark.slow
def test_rows_on_the_real_movielens_log(user_data_home, monkeypatch):
    """On the real MovieLens-100K held-out 20 % (fetched and fitted into the user's data home on
    first use): every user, the held-out items of the catalogue, and the log's popularity ranks them
    well above chance (the study's reference line)."""
    from recsim_env.data import FetchError, load_movielens_100k, temporal_split
    from recsim_env.validation import ConfigError

    monkeypatch.setenv("RECSIM_DATA_DIR", str(user_data_home))
    clear_calibration_cache()
    try:
        log = load_movielens_100k()  # fetched on first use, like the other slow tests' data
        env = gymnasium.make("recsim_env/MovieLens-v0")
    except (ConfigError, OSError, FetchError) as err:
        pytest.skip(f"MovieLens-100K or its calibration not available here: {err}")
    train, test = temporal_split(log)
    rows = s2r.build_rows(train, test, env, seed=0)
    dropped = rows.info["dropped_test_rows_item_not_in_catalogue"]
    assert rows.info["users"] == 943 and len(rows) + dropped == len(test)
    assert set(np.unique(rows.item_ids).tolist()) <= set(range(1, 1683))
    pop = s2r.score(s2r.log_popularity_scorer(train, rows), rows)
    assert 0.75 < pop["real/auc"] < 0.9 and pop["real/recall@10"] > 0.8
    env.close()
    clear_calibration_cache()
