"""``recsim-compare`` on a real tiny sweep, and its statistics against rliable.

The sweep (2 agents × 3 seeds, ``protocol=tiny``, two drift change points) is run once per module
by ``recsim-train`` itself; tests that break runs (failures, missing jobs, different lengths) work
on copies.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rliable import library as rly
from rliable import metrics as rl_metrics

from experiments.analysis import stats
from experiments.analysis.compare.aggregate import align_curves
from experiments.analysis.compare.cli import compare_runs, main
from experiments.run.rundir import RunDir
from recsim_env.state_io import load_tree

REPO = Path(__file__).resolve().parents[2]
AGENTS = ("linucb", "random")
SEEDS = (0, 1, 2)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("compare") / "sweep"
    cmd = [
        sys.executable,
        "-m",
        "experiments.train",
        "-m",
        f"agent={','.join(AGENTS)}",
        f"seed={','.join(map(str, SEEDS))}",
        "protocol=tiny",
        "logger=csv",
        "env.kwargs.drift=[{schedule:changepoints,times:[15,30],process:jump}]",
        f"hydra.sweep.dir={root}",
    ]
    env = {
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "disabled",
        "PATH": "/usr/bin:/bin",
        "HOME": str(root.parent),
    }
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root


def _summaries(sweep_dir: Path) -> dict[str, list[dict]]:
    """summary.json of every completed job, by agent (read independently of recsim-compare)."""
    import yaml

    out: dict[str, list[dict]] = {}
    for job in sweep_dir.iterdir():
        if not (job / "summary.json").exists():
            continue
        summary = json.loads((job / "summary.json").read_text())
        if summary.get("status") != "completed":
            continue
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        agent = next(o.split("=", 1)[1] for o in overrides if o.startswith("agent="))
        out.setdefault(agent, []).append(summary)
    return out


def _summaries_by_seed(sweep_dir: Path) -> dict[str, dict[int, dict]]:
    """summary.json of every completed job, by agent and seed (from the job's overrides)."""
    import yaml

    out: dict[str, dict[int, dict]] = {}
    for job in sweep_dir.iterdir():
        if not (job / "summary.json").exists():
            continue
        overrides = dict(
            o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        )
        summary = json.loads((job / "summary.json").read_text())
        out.setdefault(overrides["agent"], {})[int(overrides["seed"])] = summary
    return out


def _rliable_ci(scores: np.ndarray, func, reps: int = 2_000) -> np.ndarray:
    """rliable's CI of ``func`` for ``scores (runs,)`` or ``(runs, tasks)``.

    rliable draws from numpy's global RNG (hence experiments.analysis.stats): seed it for this
    call only,
    then put its state back.
    """
    scores = scores.reshape(len(scores), -1)
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(1234)  # noqa: NPY002
    try:
        _, ci = rly.get_interval_estimates({"x": scores}, lambda s: np.array([func(s)]), reps=reps)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return ci["x"][:, 0]


# ---------------------------------------------------------------------------------------- e2e
def test_console_script_writes_tables_plots_and_numbers(sweep, tmp_path):
    out = tmp_path / "report"
    script = Path(sys.executable).with_name("recsim-compare")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "experiments.compare"]
    proc = subprocess.run(
        [*cmd, str(sweep), "--out", str(out), "--compare", "linucb", "random", "--reps", "5000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    for name in (
        "curve_online_reward.png",
        "curve_online_cumulative_regret.png",
        "final_metrics.png",
    ):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, name
    assert results["counts"] == {"completed": 6}
    assert results["group_order"] == ["linucb", "random"]
    for agent in AGENTS:
        assert f"| {agent} | 3 |" in report
    assert (
        results["figures"]["curves"]["online/reward"]["drift_events"] == 2
    )  # change points at 240, 480
    assert "exact" in results["figures"]["curves"]["online/reward"]["grid"]["random"]

    # the recovery curve from the runs' recovery.npz (change points at 240, 480: 2 events a run)
    recovery = results["figures"]["recovery"]
    assert recovery["groups"] == {a: {"runs": 3, "events": 6} for a in AGENTS}
    data = (out / recovery["file"]).read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000
    assert "## Recovery after drift events" in report and "![recovery curve]" in report
    for agent in AGENTS:  # pooled over the events of the agent's 3 runs, read back from the runs
        pooled = recovery["pooled"][agent]
        statuses = [
            r["status"]
            for job in sweep.iterdir()
            if (job / "recovery.npz").exists() and agent in (job / "run.json").read_text()
            for r in load_tree(job / "recovery.npz")["records"]
        ]
        assert len(statuses) == 6
        assert pooled["recovery_recovered"] == statuses.count("recovered")
        assert pooled["recovery_censored"] == statuses.count("censored")
    assert {"lifelong/recovery_time_km_mean", "lifelong/recovery_drop"} <= set(results["metrics"])

    # every number is a direct computation on the runs' summary.json values
    summaries = _summaries(sweep)
    for agent in AGENTS:
        for metric in ("online/reward", "eval/return", "online/cumulative_regret"):
            values = np.array([s[metric] for s in summaries[agent]])
            entry = results["groups"][agent]["metrics"][metric]
            assert entry["n"] == 3
            assert sorted(entry["values"]) == pytest.approx(sorted(values), rel=1e-12)
            assert entry["mean"] == pytest.approx(
                rl_metrics.aggregate_mean(values.reshape(-1, 1)), rel=1e-12
            )
            assert entry["iqm"] == pytest.approx(
                rl_metrics.aggregate_iqm(values.reshape(-1, 1)), rel=1e-12
            )
            # rliable's bootstrap (other random draws): the same interval up to Monte-Carlo error
            for key, func in (
                ("ci_mean", rl_metrics.aggregate_mean),
                ("ci_iqm", rl_metrics.aggregate_iqm),
            ):
                expected = _rliable_ci(values, func)
                assert np.allclose(entry[key], expected, atol=0.02 * np.ptp(values) + 1e-12), (
                    metric,
                    key,
                )
            assert entry["ci_mean"][0] <= entry["mean"] <= entry["ci_mean"][1]
            assert f"{entry['mean']:.4g}" in report

    comparison = results["comparisons"][0]
    assert (comparison["a"], comparison["b"]) == ("linucb", "random")
    for metric in ("online/reward", "eval/return", "online/cumulative_regret"):
        a = np.array([s[metric] for s in summaries["linucb"]])
        b = np.array([s[metric] for s in summaries["random"]])
        sign = -1 if "regret" in metric else 1  # better = lower regret
        expected = rl_metrics.probability_of_improvement(
            sign * a.reshape(-1, 1), sign * b.reshape(-1, 1)
        )
        assert comparison["metrics"][metric]["poi"] == pytest.approx(expected, abs=1e-12)
    assert "Probability of improvement: linucb vs random" in report

    # paired by seed: the same seed's runs side by side, read back from the run dirs
    by_seed = _summaries_by_seed(sweep)
    for metric in ("online/reward", "eval/return", "online/cumulative_regret"):
        paired = comparison["metrics"][metric]["paired"]
        diffs = np.array(
            [by_seed["linucb"][s][metric] - by_seed["random"][s][metric] for s in SEEDS]
        )
        ratios = [by_seed["linucb"][s][metric] / by_seed["random"][s][metric] for s in SEEDS]
        sign = -1 if "regret" in metric else 1
        assert paired["n"] == 3
        assert paired["diff"] == pytest.approx(diffs.mean(), rel=1e-12)
        assert paired["ratio"] == pytest.approx(np.mean(ratios), rel=1e-12)
        assert paired["a_better"] == int(np.sum(sign * diffs > 0))
        assert paired["ci_diff"][0] <= paired["diff"] <= paired["ci_diff"][1]
    assert "| A better on |" in report


def test_failed_and_missing_runs_are_reported_not_dropped(sweep, tmp_path):
    broken = tmp_path / "sweep"
    shutil.copytree(sweep, broken)
    jobs = sorted((p for p in broken.iterdir() if p.is_dir()), key=lambda p: int(p.name))
    # job 0: failed mid-way (as experiments.train records it)
    (jobs[0] / "error.txt").write_text("Traceback ...\nRuntimeError: simulated crash\n")
    summary = json.loads((jobs[0] / "summary.json").read_text())
    summary.update(status="failed", error="RuntimeError: simulated crash")
    (jobs[0] / "summary.json").write_text(json.dumps(summary))
    # job 1: killed before any summary; job 4: never started (no dir at all)
    (jobs[1] / "summary.json").unlink()
    import yaml

    removed = yaml.safe_load((jobs[4] / ".hydra" / "overrides.yaml").read_text())
    shutil.rmtree(jobs[4])
    out = tmp_path / "report"
    results = compare_runs([broken], out, by="agent", reps=2000)

    bad = {(Path(r["path"]).name, r["status"]): r for r in results["not_completed"]}
    assert set(bad) == {("0", "failed"), ("1", "missing"), (broken.name, "missing")}
    assert "simulated crash" in bad["0", "failed"]["error"]
    never = bad[broken.name, "missing"]  # known only from the sweep's multirun.yaml
    assert sorted(never["overrides"]) == sorted(removed)
    assert results["counts"] == {"completed": 3, "failed": 1, "missing": 2}
    # only completed runs enter the statistics
    lost = [yaml.safe_load((jobs[i] / ".hydra" / "overrides.yaml").read_text()) for i in (0, 1)] + [
        removed
    ]
    for agent in AGENTS:
        expected = len(SEEDS) - sum(f"agent={agent}" in o for o in lost)
        assert results["groups"][agent]["n_runs"] == expected
    one_seed = next(a for a in AGENTS if results["groups"][a]["n_runs"] == 1)
    report = (out / "report.md").read_text()
    assert "simulated crash" in report
    assert report.count("**missing**") == 2 and report.count("**failed**") == 1
    entry = results["groups"][one_seed]["metrics"]["online/reward"]
    assert (
        entry["ci_mean"] == [None, None] and "≥ 2 seeds" in entry["note"]
    )  # 1 seed: no CI, no crash
    assert "n/a" in report


def test_one_seed_per_agent_gives_no_ci_and_no_crash(sweep, tmp_path):
    seed0 = [
        p
        for p in sweep.iterdir()
        if p.is_dir() and "seed=0" in (p / ".hydra" / "overrides.yaml").read_text()
    ]
    assert len(seed0) == 2
    rc = main(
        [
            *map(str, seed0),
            "--out",
            str(tmp_path / "r"),
            "--compare",
            "linucb",
            "random",
            "--reps",
            "500",
        ]
    )
    assert rc == 0
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    for agent in AGENTS:
        entry = results["groups"][agent]["metrics"]["online/reward"]
        assert entry["n"] == 1 and entry["ci_iqm"] == [None, None]
    poi = results["comparisons"][0]["metrics"]["online/reward"]
    assert poi["poi"] in (0.0, 0.5, 1.0) and poi["ci"] == [None, None]
    assert "CI needs ≥ 2 seeds" in (tmp_path / "r" / "report.md").read_text()


def test_runs_of_different_lengths_are_interpolated_on_the_common_range(sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    job = next(
        p
        for p in copy.iterdir()
        if p.is_dir() and "agent=random" in (p / ".hydra" / "overrides.yaml").read_text()
    )
    lines = (job / "metrics.csv").read_text().splitlines()
    kept = [lines[0]] + [ln for ln in lines[1:] if int(ln.split(",")[0]) <= 320]
    (job / "metrics.csv").write_text("\n".join(kept) + "\n")
    results = compare_runs([copy], tmp_path / "r", reps=500)
    grid = results["figures"]["curves"]["online/reward"]["grid"]
    assert grid["random"].startswith("interpolated") and "[64, 320]" in grid["random"]
    assert grid["linucb"].startswith("exact")
    assert "interpolated" in (tmp_path / "r" / "report.md").read_text()


def test_unknown_compare_group_is_an_error(sweep, tmp_path):
    assert main([str(sweep), "--out", str(tmp_path / "r"), "--compare", "dqn", "random"]) == 2


# ---------------------------------------------------------------------------------------- synthetic
def _fake_run(path: Path, *, gamma: float, lr: float, seed: int, reward: float) -> None:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(
        f"agent:\n  _target_: agents.dqn.DQNAgent\n  gamma: {gamma}\n  lr: {lr}\nenv:\n  id: recsim_env/DriftingUsers-v0\nseed: {seed}\n"
    )
    summary = {
        "status": "completed",
        "online/reward": reward,
        "online/cumulative_regret": 10 - reward,
    }
    (path / "summary.json").write_text(json.dumps(summary))
    rows = "".join(f"{s},online/reward,{reward * s / 100}\n" for s in (50, 100))
    (path / "metrics.csv").write_text("step,key,value\n" + rows)


def test_two_key_sweep_gets_a_heat_map_of_the_iqm(tmp_path):
    truth = {}
    for gamma in (0.0, 0.9):
        for lr in (1e-4, 1e-3):
            for seed in (0, 1, 2, 3):
                reward = gamma + 100 * lr + 0.01 * seed
                truth.setdefault((gamma, lr), []).append(reward)
                _fake_run(
                    tmp_path / "runs" / f"g{gamma}-lr{lr}-s{seed}",
                    gamma=gamma,
                    lr=lr,
                    seed=seed,
                    reward=reward,
                )
    results = compare_runs(
        [tmp_path / "runs"], tmp_path / "r", by="agent.gamma,agent.lr", reps=1000
    )
    assert len(results["group_order"]) == 4
    for (gamma, lr), values in truth.items():
        entry = results["groups"][f"agent.gamma={gamma:g}, agent.lr={lr:g}"]["metrics"][
            "online/reward"
        ]
        assert entry["iqm"] == pytest.approx(stats.iqm(np.array(values)))
    heatmaps = results["figures"]["heatmaps"]
    assert (
        len(heatmaps) == 1 and heatmaps[0]["x"] == "agent.gamma" and heatmaps[0]["y"] == "agent.lr"
    )
    assert (tmp_path / "r" / heatmaps[0]["file"]).read_bytes().startswith(PNG_MAGIC)
    assert "Heat map" in (tmp_path / "r" / "report.md").read_text()


# ---------------------------------------------------------------------------------------- stats
def test_aggregates_and_poi_equal_rliable_on_multi_task_scores():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3))
    y = rng.normal(0.3, size=(5, 3))
    assert stats.aggregate(x, "mean") == pytest.approx(rl_metrics.aggregate_mean(x), rel=1e-12)
    assert stats.aggregate(x, "iqm") == pytest.approx(rl_metrics.aggregate_iqm(x), rel=1e-12)
    assert stats.aggregate(x, "median") == pytest.approx(rl_metrics.aggregate_median(x), rel=1e-12)
    assert stats.probability_of_improvement(x, y) == pytest.approx(
        rl_metrics.probability_of_improvement(x, y), abs=1e-12
    )
    ties = np.array([[1.0], [2.0], [2.0]])
    assert stats.probability_of_improvement(ties, ties) == pytest.approx(0.5)


def test_paired_comparison_by_hand():
    a, b = np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0])
    out = stats.paired_comparison(a, b, reps=2_000, rng=0)
    assert out["n"] == 3 and out["a_better"] == 3
    assert out["diff"] == pytest.approx(2.0) and out["ratio"] == pytest.approx(2.0)
    assert out["ci_ratio"] == pytest.approx([2.0, 2.0])  # the same ratio on every seed
    assert out["ci_diff"][0] == pytest.approx(1.0) and out["ci_diff"][1] == pytest.approx(3.0)
    lower = stats.paired_comparison(a, b, lower_is_better=True)
    assert lower["a_better"] == 0
    no_ratio = stats.paired_comparison(a, np.array([1.0, 0.0, 3.0]))
    assert math.isnan(no_ratio["ratio"]) and all(math.isnan(c) for c in no_ratio["ci_ratio"])
    one = stats.paired_comparison(a[:1], b[:1])
    assert one["diff"] == pytest.approx(1.0) and all(math.isnan(c) for c in one["ci_diff"])


def test_stratified_bootstrap_matches_rliable():
    rng = np.random.default_rng(1)
    scores = rng.gamma(2.0, size=(10, 3))
    for name, func in (("mean", rl_metrics.aggregate_mean), ("iqm", rl_metrics.aggregate_iqm)):
        ours = stats.stratified_bootstrap_ci(scores, name, reps=10_000, rng=0)
        theirs = _rliable_ci(scores, func, reps=10_000)
        assert np.allclose(ours, theirs, atol=0.03 * scores.std()), name
    assert stats.stratified_bootstrap_ci(scores, "mean", rng=5) == stats.stratified_bootstrap_ci(
        scores, "mean", rng=5
    )
    assert all(math.isnan(v) for v in stats.stratified_bootstrap_ci([1.0], "mean"))


def test_mean_band_and_alignment():
    values = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    mean, lo, hi = stats.mean_band(values, reps=500, rng=0)
    assert np.allclose(mean, [2, 3, 4]) and np.all(lo <= mean) and np.all(mean <= hi)
    assert np.all(lo >= values.min(axis=0)) and np.all(hi <= values.max(axis=0))
    _, lo1, _ = stats.mean_band(values[:1])
    assert np.isnan(lo1).all()
    steps, aligned, how = align_curves(
        [
            (np.array([0, 10, 20]), np.array([0.0, 1.0, 2.0])),
            (np.array([5, 15]), np.array([5.0, 15.0])),
        ]
    )
    assert steps.tolist() == [5, 10, 15] and how.startswith("interpolated")
    assert np.allclose(aligned, [[0.5, 1.0, 1.5], [5.0, 10.0, 15.0]])


def test_wandb_project_without_a_key_is_a_clear_error(tmp_path, monkeypatch, capsys):
    for key in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert main(["--wandb-project", "me/recsim-env", "--out", str(tmp_path / "r")]) == 2
    assert "no W&B API key" in capsys.readouterr().err


def test_without_out_the_report_goes_into_the_first_input(sweep, tmp_path, capsys):
    """Inside the sweep dir, not beside it: sweeps of one config share their parent dir."""
    copy = tmp_path / "sweeps" / "mine"
    shutil.copytree(sweep, copy)
    assert main([str(copy), "--reps", "200", "--no-plots"]) == 0
    report = tmp_path / "sweeps" / "mine" / "report" / "report.md"
    assert report.is_file() and str(report) in capsys.readouterr().out
    assert main(["--wandb-project", "me/x"]) == 2  # no input to put it beside: --out needed


def test_run_dirs_written_before_run_json_still_load(tmp_path):
    """Older run dirs: group choices and overrides only in Hydra's .hydra/ files, the id in .run_id."""
    job = tmp_path / "old" / "0"
    _fake_run(job, gamma=0.9, lr=1e-3, seed=4, reward=1.5)
    (job / ".hydra").mkdir()
    (job / ".hydra" / "hydra.yaml").write_text(
        "hydra:\n  runtime:\n    choices:\n      agent: dqn\n      hydra/launcher: basic\n"
    )
    (job / ".hydra" / "overrides.yaml").write_text("- agent=dqn\n- seed=4\n")
    (job / ".run_id").write_text("abc123\n")
    record = RunDir(job).job()
    assert record.choices == {"agent": "dqn"} and record.overrides == ["agent=dqn", "seed=4"]
    assert record.run_id == "abc123"
    results = compare_runs([tmp_path / "old"], tmp_path / "r", reps=200, plots=False)
    assert results["group_order"] == ["dqn"]
    assert results["groups"]["dqn"]["metrics"]["online/reward"]["values"] == [1.5]
