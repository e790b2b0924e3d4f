"""``recsim-compare`` defaults that cannot mislead (issue 24) and its input checks (issue 19).

Synthetic run dirs (the files ``recsim-train`` writes: ``config.yaml``, ``run.json``,
``summary.json``, ``metrics.csv``) with known values, so every number can be checked by hand;
the end-to-end run of a real sweep is in ``test_compare.py`` and ``test_first_hour.py``.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.analysis.compare.cli import compare_runs, default_out_dir, main

TARGETS = {"dqn": "agents.dqn.DQNAgent", "sb3_dqn": "agents.sb3.SB3DQN"}


def fake_run(
    path: Path,
    *,
    agent: str = "dqn",
    gamma: float = 0.9,
    lr: float = 1e-3,
    seed: int = 0,
    reward: float = 1.0,
    env: str = "long_term",
) -> Path:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(
        f"agent:\n  _target_: {TARGETS[agent]}\n  gamma: {gamma}\n  lr: {lr}\n"
        f"env:\n  id: recsim_env/LongTerm-v0\nseed: {seed}\n"
    )
    overrides = [f"agent={agent}", f"agent.gamma={gamma}", f"agent.lr={lr}", f"seed={seed}"]
    (path / "run.json").write_text(
        json.dumps(
            {"run_id": path.name, "choices": {"agent": agent, "env": env}, "overrides": overrides}
        )
    )
    summary = {"status": "completed", "online/reward": reward, "online/regret": 2.0 - reward}
    (path / "summary.json").write_text(json.dumps(summary))
    rows = "".join(f"{s},online/reward,{reward * s / 100}\n" for s in (50, 100))
    (path / "metrics.csv").write_text("step,key,value\n" + rows)
    return path


def mixed_sweep(root: Path, seeds=(0, 1)) -> dict[tuple[str, float, float], list[float]]:
    """Our DQN and SB3's DQN on the same γ × lr grid: the sweep of sweep=gamma_eps_lr in small."""
    truth: dict[tuple[str, float, float], list[float]] = {}
    job = 0
    for agent in ("dqn", "sb3_dqn"):
        for gamma in (0.0, 0.9):
            for lr in (1e-4, 1e-3):
                for seed in seeds:
                    reward = (1.0 if agent == "dqn" else 0.2) + gamma / 10 + lr * 10 + seed / 100
                    truth.setdefault((agent, gamma, lr), []).append(reward)
                    fake_run(
                        root / str(job), agent=agent, gamma=gamma, lr=lr, seed=seed, reward=reward
                    )
                    job += 1
    return truth


# ------------------------------------------------------------------------------- never pooled
def test_hyperparameter_groups_never_pool_different_agents(tmp_path):
    truth = mixed_sweep(tmp_path / "sweep")
    results = compare_runs(
        [tmp_path / "sweep"], tmp_path / "r", by="agent.gamma,agent.lr", reps=500
    )
    assert results["split"] == ["agent"] and results["by"] == ["agent.gamma", "agent.lr", "agent"]
    assert len(results["group_order"]) == 8  # 2 agents × 2 γ × 2 lr, never 4 pooled groups
    for (agent, gamma, lr), values in truth.items():
        label = f"agent.gamma={gamma:g}, agent.lr={lr:g}, agent={agent}"
        group = results["groups"][label]
        assert group["n_runs"] == 2 and not group["notes"]
        assert sorted(group["metrics"]["online/reward"]["values"]) == pytest.approx(sorted(values))
    report = (tmp_path / "r" / "report.md").read_text()
    assert "never pooled" in report
    # one heat map per agent (the split key is a facet, γ and lr stay the axes)
    facets = [h["facet"] for h in results["figures"]["heatmaps"]]
    assert sorted(f["agent"] for f in facets) == ["dqn", "sb3_dqn"]


def test_pool_mixes_agents_only_when_asked_and_says_so(tmp_path):
    mixed_sweep(tmp_path / "sweep")
    results = compare_runs(
        [tmp_path / "sweep"], tmp_path / "r", by="agent.gamma", reps=200, plots=False, pool=True
    )
    assert results["split"] == [] and len(results["group_order"]) == 2
    group = results["groups"]["0"]
    assert group["n_runs"] == 8
    assert any("agent" in n and "pooled" in n for n in group["notes"])
    # the default (no --pool) keeps them apart
    apart = compare_runs(
        [tmp_path / "sweep"], tmp_path / "r2", by="agent.gamma", reps=200, plots=False
    )
    assert len(apart["group_order"]) == 4 and apart["split"] == ["agent"]


def test_different_envs_are_split_too(tmp_path):
    fake_run(tmp_path / "s" / "0", env="long_term", seed=0)
    fake_run(tmp_path / "s" / "1", env="abrupt", seed=0)
    results = compare_runs([tmp_path / "s"], tmp_path / "r", reps=200, plots=False)
    assert results["split"] == ["env"]
    assert sorted(results["group_order"]) == ["agent=dqn, env=abrupt", "agent=dqn, env=long_term"]


def test_cli_says_when_it_split_the_groups(tmp_path, capsys):
    mixed_sweep(tmp_path / "sweep")
    assert (
        main([str(tmp_path / "sweep"), "--by", "agent.gamma", "--reps", "100", "--no-plots"]) == 0
    )
    out = capsys.readouterr().out
    assert "split by agent" in out and "--pool" in out


# ------------------------------------------------------------------------------- CIs
def test_one_seed_reads_1_seed_not_n_a(tmp_path):
    mixed_sweep(tmp_path / "sweep", seeds=(0,))
    results = compare_runs([tmp_path / "sweep"], tmp_path / "r", reps=200, plots=False)
    entry = results["groups"]["dqn"]["metrics"]["online/reward"]
    assert entry["n"] == 4  # the four γ × lr runs pooled? no: by=agent, so these ARE the group
    one = compare_runs(
        [tmp_path / "sweep"], tmp_path / "r1", by="agent.gamma,agent.lr", reps=200, plots=False
    )
    for group in one["groups"].values():
        e = group["metrics"]["online/reward"]
        assert e["n"] == 1 and e["ci_mean"] == [None, None] and e["ci_note"] == "1 seed"
    report = (tmp_path / "r1" / "report.md").read_text()
    overview = report.split("## Overview")[1].split("###")[0]
    assert "1 seed" in overview and "n/a" not in overview


# ------------------------------------------------------------------------------- plots
def test_many_groups_get_one_panel_per_agent_and_legends_outside(tmp_path):
    mixed_sweep(tmp_path / "sweep")  # 8 groups: one panel
    for i, lr in enumerate((3e-4, 3e-3)):  # 2 more lrs per agent: 12 groups > PANEL_GROUPS
        for j, agent in enumerate(("dqn", "sb3_dqn")):
            for seed in (0, 1):
                fake_run(
                    tmp_path / "sweep" / f"x{i}{j}{seed}", agent=agent, lr=lr, seed=seed, gamma=0.0
                )
                fake_run(
                    tmp_path / "sweep" / f"y{i}{j}{seed}", agent=agent, lr=lr, seed=seed, gamma=0.9
                )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied" would be a warning
        results = compare_runs(
            [tmp_path / "sweep"], tmp_path / "r", by="agent.gamma,agent.lr", reps=200
        )
    assert len(results["group_order"]) == 16
    assert results["figures"]["curves"]["online/reward"]["panels"] == 2
    png = (tmp_path / "r" / "curve_online_reward.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_final_metrics_tick_labels_do_not_overlap(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from experiments.analysis.compare import plots

    mixed_sweep(tmp_path / "sweep")
    results = compare_runs(
        [tmp_path / "sweep"], tmp_path / "r", by="agent.gamma,agent.lr", reps=200, plots=False
    )
    fig = plots.final_metrics_figure(results, plots._colors(len(results["group_order"])))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
            if label.get_visible() and label.get_text():
                boxes.append(label.get_window_extent(renderer))
    assert len(boxes) > 8
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)


# ------------------------------------------------------------------------------- report dir
def test_default_report_dir_is_inside_each_sweep(tmp_path):
    a, b = (
        tmp_path / "multirun" / "gamma_eps_lr" / "a",
        tmp_path / "multirun" / "gamma_eps_lr" / "b",
    )
    fake_run(a / "0")
    fake_run(b / "0")
    assert default_out_dir([a]) != default_out_dir([b])
    assert default_out_dir([a]) == a.resolve() / "report"
    assert main([str(a), "--reps", "100", "--no-plots"]) == 0
    assert (a / "report" / "report.md").is_file()
    # the report dir is not taken for a run on the next comparison
    again = compare_runs([a], tmp_path / "r", reps=100, plots=False)
    assert again["counts"] == {"completed": 1}


# ------------------------------------------------------------------------------- issue 19 cases
def test_summary_that_is_not_an_object_is_skipped_with_a_warning(tmp_path, caplog):
    fake_run(tmp_path / "s" / "0", seed=0)
    bad = fake_run(tmp_path / "s" / "1", seed=1)
    (bad / "summary.json").write_text("[1, 2, 3]")
    results = compare_runs([tmp_path / "s"], tmp_path / "r", reps=100, plots=False)
    assert results["counts"] == {"completed": 1, "unreadable": 1}
    (row,) = results["not_completed"]
    assert row["status"] == "unreadable" and "not a JSON object" in row["error"]
    assert str(bad / "summary.json") in caplog.text


def test_corrupt_config_is_reported_as_corrupt_not_missing(tmp_path):
    from tests.experiments.test_compare import AGENTS  # noqa: F401  (same package layout)

    root = tmp_path / "s"
    fake_run(root / "0", seed=0)
    bad = fake_run(root / "1", seed=1)
    (bad / "config.yaml").write_text("agent: [unclosed\n  : {\n")
    (root / "multirun.yaml").write_text(
        "hydra:\n  sweeper:\n    _target_: hydra._internal.core_plugins.basic_sweeper.BasicSweeper\n"
        "    params: null\n  overrides:\n    task:\n    - agent=dqn\n    - agent.gamma=0.9\n"
        "    - agent.lr=0.001\n    - seed=0,1\n"
    )
    results = compare_runs([root], tmp_path / "r", reps=100, plots=False)
    statuses = {(Path(r["path"]).name, r["status"]) for r in results["not_completed"]}
    assert statuses == {("1", "unreadable")}, results["not_completed"]
    assert "corrupt config.yaml" in results["not_completed"][0]["error"]


def test_the_same_dir_twice_counts_once(tmp_path):
    mixed_sweep(tmp_path / "sweep")
    sweep = tmp_path / "sweep"
    results = compare_runs([sweep, sweep, sweep / "0"], tmp_path / "r", reps=100, plots=False)
    assert results["counts"] == {"completed": 16}
    assert results["groups"]["dqn"]["n_runs"] == 8


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--reps", "0", "invalid --reps=0 (allowed: an integer >= 100"),
        ("--reps", "1", "invalid --reps=1 (allowed: an integer >= 100"),
        ("--reps", "-5", "invalid --reps=-5 (allowed: an integer >= 100"),
        ("--confidence", "0", "invalid --confidence=0.0 (allowed: a finite number in (0, 1)"),
        ("--confidence", "1.5", "invalid --confidence=1.5 (allowed: a finite number in (0, 1)"),
        ("--seed", "-1", "invalid --seed=-1"),
    ],
)
def test_bad_numbers_are_clear_errors(tmp_path, capsys, option, value, message):
    fake_run(tmp_path / "s" / "0")
    assert main([str(tmp_path / "s"), "--out", str(tmp_path / "r"), option, value]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "listed"),
    [
        ("--by", "agent.gama", "did you mean agent.gamma"),
        ("--tasks", "envv", "allowed: "),
        ("--heatmap-metric", "online/rewrd", "did you mean online/reward"),
        ("--curves", "online/rewad", "did you mean online/reward"),
    ],
)
def test_unknown_keys_are_errors_listing_the_known_ones(tmp_path, capsys, option, value, listed):
    mixed_sweep(tmp_path / "s")
    argv = [str(tmp_path / "s"), "--out", str(tmp_path / "r"), "--reps", "100", option, value]
    if option == "--heatmap-metric":
        argv += ["--by", "agent.gamma,agent.lr"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"invalid {option}={value!r}" in err and listed in err, err
    if option != "--by":
        assert "online/reward" in err or "agent" in err


# ------------------------------------------------------------------------------- property test
_WORDS = st.sampled_from(
    ["agent", "env", "seed", "agent.gamma", "agent.lr", "nope", "agent.x", "", ",", "a,b", "é", "1"]
)
_NUMS = st.one_of(
    st.integers(-10, 10).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["abc", "", "1e9", "0.5", "1", "0"]),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    by=_WORDS,
    tasks=st.one_of(st.none(), _WORDS),
    heat=st.one_of(st.none(), st.sampled_from(["online/reward", "online/x", ""])),
    curves=st.one_of(st.none(), st.sampled_from(["online/reward", "x/y", ",", ""])),
    reps=st.one_of(_NUMS, st.integers(100, 300).map(str)),
    confidence=_NUMS,
    seed=_NUMS,
    compare=st.one_of(st.none(), st.tuples(_WORDS, _WORDS)),
    pool=st.booleans(),
)
def test_option_parsing_gives_a_clear_error_or_a_correct_result(
    tmp_path_factory, by, tasks, heat, curves, reps, confidence, seed, compare, pool
):
    root = tmp_path_factory.mktemp("prop")
    sweep = root / "s"
    truth = mixed_sweep(sweep)
    argv = [str(sweep), "--out", str(root / "r"), "--no-plots", "--by", by]
    argv += ["--reps", reps, "--confidence", confidence, "--seed", seed]
    if tasks is not None:
        argv += ["--tasks", tasks]
    if heat is not None:
        argv += ["--heatmap-metric", heat]
    if curves is not None:
        argv += ["--curves", curves]
    if compare is not None:
        argv += ["--compare", *compare]
    if pool:
        argv.append("--pool")
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: "argument --reps: invalid int value: 'abc'"
            rc = exc.code
    text = err.getvalue()
    assert "Traceback" not in text
    if rc == 2:
        assert text.strip().startswith(("recsim-compare:", "usage:")), text
        assert "invalid" in text or "error" in text or "no group named" in text, text
        return
    assert rc == 0, (rc, text)
    results = json.loads((root / "r" / "results.json").read_text())
    total = sum(g["n_runs"] for g in results["groups"].values())
    assert total == sum(len(v) for v in truth.values())  # every run in exactly one group
    if not pool:  # never two agents in one group
        for group in results["groups"].values():
            agents = {Path(p).name for p in group["runs"]}
            assert len({int(a) < 8 for a in agents}) == 1
    for group in results["groups"].values():
        e = group["metrics"]["online/reward"]
        if e["n"] >= 2:
            assert e["ci_mean"][0] <= e["mean"] <= e["ci_mean"][1]
        else:
            assert e["ci_mean"] == [None, None]
    assert math.isfinite(float(confidence)) and 0 < float(confidence) < 1
    assert int(reps) >= 100
    _ = np
