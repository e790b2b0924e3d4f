"""``recsim-calibrate`` end to end on a small log written by the test, and its input errors."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from recsim_env.calibrate import cli
from recsim_env.grounding import Calibration

NUM_USERS, NUM_ITEMS, NUM_GENRES = 40, 60, 4


@pytest.fixture(scope="module")
def log_files(tmp_path_factory):
    """Users who prefer one genre choose items of it more often, over three months of sessions."""
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("log")
    genre = rng.integers(0, NUM_GENRES, NUM_ITEMS)
    items = pd.DataFrame(np.eye(NUM_GENRES, dtype=int)[genre], columns=list("ABCD"))
    items.index.name = "iid"
    items.to_csv(d / "items.csv")
    likes = rng.integers(0, NUM_GENRES, NUM_USERS)
    pop = rng.zipf(1.6, NUM_ITEMS).clip(max=50).astype(float)
    rows = []
    for u in range(NUM_USERS):
        w = pop * np.where(genre == likes[u], 6.0, 1.0)
        n = int(rng.integers(10, 40))
        chosen = rng.choice(NUM_ITEMS, size=n, replace=False, p=w / w.sum())
        start = rng.uniform(0, 60 * 86400)
        # sessions of a few items a minute apart, days between them
        gaps = np.where(rng.random(n) < 0.25, rng.exponential(3 * 86400, n), 60.0)
        t = start + np.cumsum(gaps)
        rows += [
            (u, int(i), int(ts), int(rng.integers(1, 6))) for i, ts in zip(chosen, t, strict=True)
        ]
    df = pd.DataFrame(rows, columns=["uid", "iid", "ts", "stars"]).sort_values("ts")
    df.to_csv(d / "log.csv", index=False)
    return d


def test_cli_end_to_end_with_validate(log_files, tmp_path, capsys):
    out = tmp_path / "cal"
    argv = [str(log_files / "log.csv"), "--user", "uid", "--item", "iid", "--timestamp", "ts"]
    argv += ["--rating", "stars", "--items", str(log_files / "items.csv")]
    argv += ["--categories", "A,B,C,D", "--topics", "categories", "--num-topics", "4"]
    argv += ["--validate", "--out", str(out), "--seed", "1", "--sim-steps", "150"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "targets:" in printed and str(out) in printed
    cal = Calibration.load(out)
    assert cal.item_topics.shape[0] <= NUM_ITEMS
    conf = yaml.safe_load((out / "env.yaml").read_text())
    assert conf["id"] == cli.GENERIC_ID
    assert conf["kwargs"]["calibration"] == str(out.resolve())
    assert set(conf) == {"id", "num_envs", "kwargs"}
    res = json.loads((out / "fidelity" / "fidelity.json").read_text())
    assert set(res["choice"]) >= {"popularity", "svd", "calibrated", "default_sim"}
    for name in ("popularity", "svd", "calibrated", "default_sim"):
        e = res["choice"][name]
        assert 0 <= e["recall"] <= 1 and 0 <= e["ndcg"] <= 1 and 0 <= e["auc"] <= 1
        assert e["recall_ci95"][0] <= e["recall"] <= e["recall_ci95"][1]
        assert e["num_users"] == res["split"]["test_users"]
    assert set(res["distributions"]) == {"calibrated", "default", "train_split"}
    assert set(res["distributions_in_sample"]) == {"calibrated", "default"}
    # in sample, the reference is the training split (its Gini is the held-out table's "other")
    ins = res["distributions_in_sample"]["calibrated"]
    assert ins["gini_real"] == res["distributions"]["train_split"]["gini_other"]
    assert ins["gini_other"] == res["distributions"]["calibrated"]["gini_other"]
    assert res["simulation"]["steps"] == 150
    # a log of consumptions only is served uniformly (its fitted appeal already holds exposure)
    assert res["simulation"]["policy"] == "uniform"
    assert "uniform logging policy" in (out / "fidelity" / "report.md").read_text()
    assert res["targets_total"] == len(res["targets"]) == 9
    for t in res["targets"]:
        assert t["met"] in (True, False, None)
        if t["met"] is not None:
            assert (t["gap"] >= 0) == t["met"] or "<=" in t["target"]
    # the ceiling: the real training split is close to the held-out log in genre shares
    assert res["distributions"]["train_split"]["category_tv"] < 0.2
    md = (out / "fidelity" / "report.md").read_text()
    assert "## Targets" in md and "recall@10" in md
    for png in res["plots"]:
        assert (out / "fidelity" / png).stat().st_size > 1000


def test_env_yaml_names_the_dataset_id_and_default_out(monkeypatch, tmp_path):
    text = cli.env_yaml("movielens-100k", tmp_path / "c")
    conf = yaml.safe_load(text)
    assert conf["id"] == "recsim_env/MovieLens-v0"
    assert conf["kwargs"]["calibration"] == str((tmp_path / "c").resolve())
    monkeypatch.setenv("RECSIM_DATA_DIR", str(tmp_path))
    assert cli.default_out("movielens-100k") == tmp_path / "calibrations" / "movielens-100k"
    assert cli.default_out("some/dir/clicks.csv").name == "clicks"


def test_missing_source_is_a_clear_error(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nope.csv")]) == 1
    err = capsys.readouterr().err
    assert "invalid SOURCE=" in err and "movielens-100k" in err and "Traceback" not in err


def test_missing_column_is_a_clear_error(log_files, tmp_path, capsys):
    argv = [str(log_files / "log.csv"), "--user", "who", "--out", str(tmp_path / "x")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "recsim-calibrate: error:" in err and "who" in err


def test_categories_need_an_item_table(log_files, capsys):
    assert cli.main([str(log_files / "log.csv"), "--categories", "A,B"]) == 1
    assert "--items" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["x.csv", "--num-topics", "0"],
        ["x.csv", "--seed", "-1"],
        ["x", "--topics", "lda"],
        ["x", "--sim-steps", "0"],
    ],
)
def test_bad_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "usage: recsim-calibrate" in capsys.readouterr().err


def test_logging_policy_can_be_chosen(log_files, tmp_path):
    out = tmp_path / "cal"
    argv = [str(log_files / "log.csv"), "--user", "uid", "--item", "iid", "--timestamp", "ts"]
    argv += ["--validate", "--out", str(out), "--sim-steps", "100", "--num-topics", "3"]
    assert cli.main([*argv, "--logging-policy", "popularity"]) == 0
    res = json.loads((out / "fidelity" / "fidelity.json").read_text())
    assert res["simulation"]["policy"] == "popularity"
