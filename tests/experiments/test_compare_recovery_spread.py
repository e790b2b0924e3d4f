"""``recsim-compare``'s "Recovery time between worlds" section (issue 23), on run dirs written
by hand: two agents on the same three worlds, the same drift events, one slower on every world
by a known amount; a third with no recovery records stays out of the section."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from experiments.analysis.compare.cli import compare_runs
from experiments.analysis.recovery import EventRecovery, km_restricted_mean
from experiments.run.rundir import JobRecord, RunDir
from recsim_env.state_io import save_tree

EVENTS = [32_000 * k for k in range(1, 9)]
HARD = {0: {1, 4}, 1: {2}, 2: {0, 3, 6}}  # per world, the events that hurt (the same for both)


def times(agent: str, world: int) -> list[float]:
    slow = 2_000.0 if agent == "slow" else 0.0
    return [25_000.0 + slow if k in HARD[world] else 100.0 + slow for k in range(len(EVENTS))]


def write_run(path, agent: str, seed: int, recovery: bool = True) -> None:
    rd = RunDir(path)
    rd.path.mkdir(parents=True)
    rd.config_path.write_text(yaml.safe_dump({"seed": seed, "agent": {"name": agent}}))
    rd.write_job(JobRecord(choices={"agent": agent}, overrides=[f"agent={agent}", f"seed={seed}"]))
    rd.write_summary({"status": "completed", "online/reward": 0.5})
    if recovery:
        records = [
            EventRecovery(s, "recovered", 0.8, int(t), None, 0.1, 0.95, 32_000).to_dict()
            for s, t in zip(EVENTS, times(agent, seed), strict=True)
        ]
        save_tree(
            rd.recovery_path,
            {
                "format": 1,
                "settings": {"horizon": 32_000, "baseline": 4096, "bin_size": 16},
                "offsets": np.zeros(1),
                "value": np.zeros((len(EVENTS), 1)),
                "best": np.ones((len(EVENTS), 1)),
                "records": records,
            },
        )


def test_compare_reports_the_per_world_spread_and_which_pairs_separate(tmp_path):
    sweep = tmp_path / "sweep"
    job = 0
    for agent in ("fast", "slow", "norecords"):
        for seed in (0, 1, 2):
            write_run(sweep / str(job), agent, seed, recovery=agent != "norecords")
            job += 1
    out = tmp_path / "report"
    results = compare_runs([sweep], out, plots=False, compare=[("fast", "slow")], reps=500)
    spread = results["recovery_spread"]
    assert sorted(spread["groups"]) == ["fast", "slow"]
    fast = spread["groups"]["fast"]
    want = [km_restricted_mean(times("fast", w), [True] * len(EVENTS)) for w in (0, 1, 2)]
    assert [w["km_mean"] for w in fast["worlds"]] == pytest.approx(want)
    assert fast["events"] == [8, 8, 8] and fast["range"] == pytest.approx(max(want) - min(want))
    (pair,) = spread["pairs"]
    assert (pair["a"], pair["b"], pair["worlds"], pair["a_faster"]) == ("fast", "slow", 3, 3)
    assert pair["paired_events"] and pair["separable"]
    assert pair["diff"] == pytest.approx(-2_000) and pair["ci_diff"] == pytest.approx([-2e3, -2e3])
    # the worlds differ by ~9k (1 to 3 hard events of 8), more than the 2k gap: not "spread <"
    assert not pair["spread_below_diff"]
    report = (out / "report.md").read_text()
    assert "## Recovery time between worlds" in report
    assert "| fast vs slow | 3 | -2,000 [-2,000, -2,000] | 3/3 | **yes** |" in report
    assert "norecords" not in report.split("## Recovery time between worlds")[1].split("##")[0]
    saved = json.loads((out / "results.json").read_text())
    assert saved["recovery_spread"]["pairs"][0]["separable"] is True


def test_without_compare_pairs_more_than_three_groups_get_the_spread_table_only(tmp_path):
    sweep = tmp_path / "sweep"
    for agent in ("fast", "slow", "other", "another"):  # times(): all but "slow" are fast
        for seed in (0, 1):
            write_run(sweep / f"{agent}_{seed}", agent, seed)
    results = compare_runs([sweep], tmp_path / "report", plots=False, reps=200)
    spread = results["recovery_spread"]
    assert len(spread["groups"]) == 4 and spread["pairs"] == []
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Which pairs the data separate: pass `--compare A B`." in report


def test_one_world_renders_without_a_spread():
    from experiments.analysis.compare.recovery_spread import _json_ready, render_spread
    from experiments.analysis.recovery_spread import recovery_spread

    table = [
        {"group": g, "world": 0, "event": k, "time": t, "recovered": True}
        for g in ("A", "B")
        for k, t in enumerate([0.0, 100.0, 30_000.0])
    ]
    entry = _json_ready(recovery_spread(table, [("A", "B")], reps=50))
    json.dumps(entry, allow_nan=False)  # results.json allows no nan / inf
    text = "\n".join(render_spread(entry))
    assert "| A | 1 | 3 | 10,033 |" in text and "n/a" in text
    assert "| A vs B | 1 |" in text and "| no |" in text
