"""Time to a good policy end to end: the reference evaluation part logs the references on the same
users, recsim-compare turns each run's series into its time to good (reached / censored), and the
training benchmark's table says the same."""

from __future__ import annotations

import json

import pytest

from experiments.analysis.compare.cli import compare_runs
from experiments.bench.time_to_good import bench_time_to_good, format_report, read_series
from experiments.run.job import run

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
    text = format_report(report)
    assert "| oracle_longterm | 1/1 | 160 |" in text and "| random | 0/1 | > 320 |" in text
