"""Time to a good policy end to end: the reference evaluation part logs the references on the same
users, recsim-compare turns each run's series into its time to good (reached / censored), and the
training benchmark's table says the same."""

from __future__ import annotations

import json

import pytest

from experiments.analysis.compare.cli import compare_runs
from experiments.bench.time_to_good import bench_time_to_good, format_report, read_series
from experiments.run.job import run
from recsim_env.validation import ConfigError

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from tests.conftest import compose_config

    root = tmp_path_factory.mktemp("ttg")
    for agent in ("oracle", "random"):
        for seed in SEEDS:
            cfg = compose_config(
                "protocol=tiny", "progress=false", "protocol/parts=with_references",
                f"agent={agent}", f"seed={seed}", "env=stationary", "logger=csv",
            )  # fmt: skip
            run(cfg, run_dir=root / f"{agent}-{seed}", choices={"agent": agent})
    return root


def test_references_are_logged_on_the_same_users(runs):
    series = read_series(runs / "oracle-0" / "metrics.csv")
    steps, ref = series["eval/ref_oracle_return"]
    assert list(steps) == [320.0, 640.0]  # at every evaluation
    # the oracle evaluated as the agent sees the users the reference sees: the same return
    assert list(series["eval/return"][1]) == list(ref)
    assert "eval/ref_longterm_return" not in series  # Stationary-v0: users do not return
    summary = json.loads((runs / "oracle-0" / "summary.json").read_text())
    assert summary["eval/ref_oracle_return"] == ref[-1]


def test_compare_reports_reached_and_censored_runs(runs, tmp_path):
    results = compare_runs([runs], tmp_path / "out", plots=False, reps=200)
    groups = results["time_to_good"]["groups"]
    oracle, rand = groups["oracle"], groups["random"]
    assert oracle["summary"]["time_to_good/reached"] == 2  # 100 % of itself at the first eval
    assert oracle["summary"]["time_to_good/user_steps_km_median"] == 320
    assert rand["summary"]["time_to_good/censored"] == 2
    assert rand["summary"]["time_to_good/user_steps_km_median"] is None  # nan in the JSON
    assert all(r["best_ratio"] < 1 for r in rand["runs"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Time to a good policy" in report
    assert "| random | 80% of the myopic oracle's eval return | 0/2 | > 640 |" in report


def test_compare_without_references_has_no_section(tmp_path):
    from tests.conftest import compose_config

    cfg = compose_config("protocol=tiny", "progress=false", "agent=random", "logger=csv")
    run(cfg, run_dir=tmp_path / "plain" / "r")
    results = compare_runs([tmp_path / "plain"], tmp_path / "out", plots=False, reps=200)
    assert results["time_to_good"] is None
    assert "Time to a good policy" not in (tmp_path / "out" / "report.md").read_text()


def test_benchmark_table(tmp_path):
    report = bench_time_to_good(
        tmp_path, envs=["long_term"], agents=["oracle_longterm", "random"], seeds=[0],
        total_steps=320, eval_every=160, eval_episodes=4, extra_overrides=["protocol=tiny"],
    )  # fmt: skip
    block = report["envs"]["long_term"]
    assert block["target"].startswith("50% of the headroom")
    best = block["agents"]["oracle_longterm"]["runs"][0]
    assert best["reached"] and best["user_steps"] == 160 and best["final_share"] == 1.0
    assert not block["agents"]["random"]["runs"][0]["reached"]
    assert best["preset"] == "defaults" and best["references"] == "measured"
    text = format_report(report)
    assert "| oracle_longterm | defaults | 1/1 | 160 |" in text
    assert "| random | defaults | 0/1 | > 320 |" in text


def test_benchmark_reads_the_references_of_reference_runs_and_reuses_its_runs(tmp_path):
    """References measured once per world (reference runs of the same schedule) give every run the
    same time to good as references measured in the run: they do not depend on the agent."""
    settings = dict(
        envs=["long_term"], seeds=[0], total_steps=320, eval_every=160, eval_episodes=4,
        extra_overrides=["protocol=tiny"],
    )  # fmt: skip
    refs = bench_time_to_good(tmp_path / "refs", agents=["oracle", "oracle_longterm"], **settings)
    measured = bench_time_to_good(tmp_path / "measured", agents=["random"], **settings)
    given = bench_time_to_good(
        tmp_path / "given", agents=["random"], references=[tmp_path / "refs"], **settings
    )
    m = measured["envs"]["long_term"]["agents"]["random"]["runs"][0]
    g = given["envs"]["long_term"]["agents"]["random"]["runs"][0]
    assert m["references"] == "measured" and g["references"] == "given"
    # the given run evaluated no reference itself, yet scores exactly as the measuring one
    own = read_series(tmp_path / "given" / "long_term" / "random" / "seed0" / "metrics.csv")
    assert "eval/ref_oracle_return" not in own
    for key in ("best_ratio", "final_share", "reached", "user_steps"):
        assert g[key] == m[key], key
    # and as the reference runs themselves: the long-term reference reaches its own target
    assert refs["envs"]["long_term"]["agents"]["oracle_longterm"]["runs"][0]["reached"]
    # reuse: a completed run of the same overrides is read back, not trained again
    metrics = tmp_path / "given" / "long_term" / "random" / "seed0" / "metrics.csv"
    before = metrics.stat().st_mtime_ns
    again = bench_time_to_good(
        tmp_path / "given", agents=["random"], references=[tmp_path / "refs"], reuse=True,
        **settings,
    )  # fmt: skip
    assert metrics.stat().st_mtime_ns == before
    assert again["envs"]["long_term"]["agents"]["random"]["runs"][0] == g


def test_final_share_reads_the_references_at_the_last_evaluation():
    """Reference runs may go on beyond the agent's budget: the share uses the references logged at
    the agent's last evaluation, not their last values."""
    import numpy as np

    from experiments.bench.time_to_good import final_share

    series = {
        "eval/return": (np.array([50.0, 100.0]), np.array([10.0, 30.0])),
        "eval/ref_oracle_return": (np.array([50.0, 100.0, 150.0]), np.array([20.0, 20.0, 90.0])),
        "eval/ref_longterm_return": (np.array([50.0, 100.0, 150.0]), np.array([40.0, 60.0, 99.0])),
    }
    assert final_share(series) == (30.0 - 20.0) / (60.0 - 20.0)
    del series["eval/ref_longterm_return"]
    assert final_share(series) == 30.0 / 20.0


def test_benchmark_refuses_a_missing_reference_dir(tmp_path):
    with pytest.raises(ConfigError, match="invalid --references="):
        bench_time_to_good(tmp_path, envs=["long_term"], agents=["random"], seeds=[0],
                           references=[tmp_path / "nowhere"])  # fmt: skip
