"""``recsim-tune``: Optuna search over ``recsim-train`` runs — pruning, failures, shared studies.

Trials are tiny (``protocol=tiny``: 640 user-steps, under a second each). Most studies run in
process through ``experiments.tune.main``; the shared-study test runs two real ``recsim-tune``
processes side by side and reproduces the best trial with the real ``recsim-train``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.trial import TrialState

from experiments.analysis.schema import optimization_direction
from experiments.run.config import ConfigError, instantiate_checked
from experiments.run.rundir import RunDir
from experiments.tune import (
    SPACE_DIR,
    SearchSpace,
    compose_config,
    main,
    make_sampler,
    make_storage,
    resolve_setup,
)
from experiments.tune.space import _override_value

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SPACES = sorted(p.stem for p in SPACE_DIR.glob("*.yaml"))


def write_space(path: Path, space: dict) -> Path:
    path.write_text(yaml.safe_dump(space))
    return path


def load_study(storage: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=make_storage(storage))


# ---------------------------------------------------------------------------------------- spaces
def test_the_shipped_search_spaces():
    assert {"dqn", "linucb"} <= set(SPACES)
    dqn = SearchSpace.load("dqn")
    assert {"agent.lr", "agent.gamma", "agent.exploration_fraction"} <= set(dqn.params)
    assert dqn.params["agent.lr"].log and dqn.params["agent.lr"].low == 1e-5
    assert dqn.overrides == ("agent=dqn",)


@pytest.mark.parametrize("name", SPACES)
def test_every_search_space_composes_and_builds_the_agent_at_its_bounds(name, make_env):
    space, fixed, metric = resolve_setup(SearchSpace.load(name), ["protocol=tiny"], None)
    assert fixed[-1] == f"optimize_metric={metric}"
    env = make_env()
    for i in (0, -1):  # every param at its low end, then at its high end
        values = {k: p.bounds()[i] for k, p in space.params.items()}
        cfg, _ = compose_config([*fixed, *(f"{k}={_override_value(v)}" for k, v in values.items())])
        agent = instantiate_checked(cfg.agent, "agent", env=env)
        hparams = agent.hyperparameters()
        for key, value in values.items():  # the sampled value reaches the constructor
            assert hparams[key.removeprefix("agent.")] == value, key
    env.close()


def test_a_list_valued_choice_reaches_the_agent_as_a_list(make_env):
    """Optuna stores choices as primitives; a list choice (hidden_sizes) must still reach the
    config as a list, not as the string '[64,64]' (the agent would refuse it)."""
    space = SearchSpace.from_dict(
        {
            "params": {"agent.hidden_sizes": {"choices": [[32], [64, 64]]}},
            "overrides": ["agent=dqn"],
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampled = {tuple(space.params["agent.hidden_sizes"].suggest(study.ask())) for _ in range(12)}
    assert sampled == {(32,), (64, 64)}
    for choice in space.params["agent.hidden_sizes"].bounds():
        cfg, _ = compose_config(
            ["agent=dqn", "protocol=tiny", f"agent.hidden_sizes={_override_value(choice)}"]
        )
        env = make_env()
        agent = instantiate_checked(cfg.agent, "agent", env=env)
        assert list(agent.hyperparameters()["hidden_sizes"]) == choice
        env.close()


@pytest.mark.parametrize(
    "value", [1e-5, 0.1 + 0.2, 3, -1.5, True, None, "oracle", "a b", "it's", "true", "1", [64, 64]]
)
def test_override_values_round_trip_through_hydra(value):
    parsed = OverridesParser.create().parse_override(f"k={_override_value(value)}").value()
    assert parsed == value and type(parsed) is type(value)


def test_metric_direction_comes_from_the_schema():
    assert optimization_direction("online/reward") == "maximize"
    assert optimization_direction("eval/return") == "maximize"
    assert optimization_direction("online/regret") == "minimize"
    assert optimization_direction("online/cumulative_regret") == "minimize"
    assert optimization_direction("online/regret_final") == "minimize"
    assert optimization_direction("lifelong/recovery_time_km_mean") == "minimize"
    assert optimization_direction("train/loss") == "minimize"
    assert optimization_direction("train/value_loss") == "minimize"  # not listed: word rule


@pytest.mark.parametrize(
    ("space", "args", "expected"),
    [
        ({"params": {"agent.lrr": {"low": 0.1, "high": 1.0}}}, [], ["agent.lrr"]),
        ({"params": {"agent.lr": {"type": "floaty", "low": 0, "high": 1}}}, [], ["floaty"]),
        ({"params": {"agent.lr": {"low": 1.0, "high": 0.1}}}, [], ["low=1.0", "high=0.1"]),
        ({"params": {"agent.lr": {"low": 0.0, "high": 1.0, "log": True}}}, [], ["low > 0"]),
        ({"params": {"agent.lr": {"low": 0.1, "high": 1.0}}, "extra": 1}, [], ["'extra'"]),
        ({"params": {"agent.lr": {"low": 0.1, "high": 1.0}}}, ["--metric", "x/y"], ["x/y"]),
        ({"params": {"agent.lr": {"low": 0.1, "high": 1.0}}}, ["agent.lr=0.5"], ["nothing"]),
    ],
)
def test_bad_setups_fail_before_any_trial(space, args, expected, tmp_path, capsys):
    path = write_space(tmp_path / "space.yaml", space)
    code = main(["--space", str(path), "--tune-dir", str(tmp_path / "tune"), *args])
    err = capsys.readouterr().err
    assert code == 2
    for part in expected:
        assert part in err
    assert not list((tmp_path / "tune").glob("trial_*"))


# ---------------------------------------------------------------------------------------- sampler
def test_trial_seeded_sampler_gives_workers_distinct_and_reproducible_points(tmp_path):
    """Trial n's random-phase point depends on (seed, n) only: two workers sharing a study with
    the same seed propose what one process would, not the same point twice."""

    def sample(study: optuna.Study) -> tuple[int, float]:
        trial = study.ask()
        return trial.number, trial.suggest_float("x", 0.0, 1.0)

    def new_study(storage, name):
        return optuna.create_study(
            storage=storage,
            study_name=name,
            sampler=make_sampler(7, n_startup_trials=10),
            load_if_exists=True,
        )

    alone = new_study(None, "alone")
    expected = [sample(alone) for _ in range(4)]
    storage = make_storage(tmp_path / "shared.journal")
    a, b = new_study(storage, "shared"), new_study(storage, "shared")
    got = [sample(a), sample(b), sample(b), sample(a)]
    assert sorted(got) == expected
    assert len({x for _, x in got}) == 4
    other = new_study(None, "other seed")
    other.sampler = make_sampler(8, n_startup_trials=10)
    assert sample(other)[1] != expected[0][1]


# ---------------------------------------------------------------------------------------- studies
def test_pruning_follows_the_median_rule_and_the_best_trial_is_reported(tmp_path, capsys):
    """4 trials over {oracle, random}: a random trial after a completed oracle trial is clearly
    worse than the median at the first evaluation and is pruned there."""
    space = write_space(
        tmp_path / "space.yaml", {"params": {"agent": {"choices": ["oracle", "random"]}}}
    )
    storage, tune_dir = tmp_path / "study.journal", tmp_path / "tune"
    code = main(
        [
            "--space",
            str(space),
            "--study-name",
            "agents",
            "--storage",
            str(storage),
            "--tune-dir",
            str(tune_dir),
            "--n-trials",
            "4",
            "--seed",
            "0",
            "--prune-startup-trials",
            "1",
            "protocol=tiny",
            "protocol.eval_every=64",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    study = load_study(storage, "agents")
    trials = study.get_trials()
    assert len(trials) == 4
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned, [(t.params, t.state) for t in trials]
    assert len(pruned) + len(complete) == 4

    for t in pruned:
        step = t.user_attrs["pruned_at_step"]
        assert 0 < step < 640 and max(t.intermediate_values) == step
        # the median rule: worse than the median of the earlier completed trials at that step
        earlier = [c.intermediate_values[step] for c in complete if c.number < t.number]
        assert earlier and t.intermediate_values[step] < np.median(earlier)
        run_dir = Path(t.user_attrs["run_dir"])
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "pruned" and summary["pruned_at_step"] == step
        assert summary["num_timesteps"] == step < summary["total_steps"]
        assert not (run_dir / "error.txt").exists()
    # a random trial after a completed oracle trial never runs to the end
    for t in trials:
        if t.params["agent"] == "random" and any(
            c.params["agent"] == "oracle" and c.number < t.number for c in complete
        ):
            assert t.state == TrialState.PRUNED
    for t in complete:  # the study's value is the run's optimised metric
        run_dir = Path(t.user_attrs["run_dir"])
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "completed" and t.value == summary["online/reward"]
        for name in ("config.yaml", "metrics.csv", "train.log", "run.json"):
            assert (run_dir / name).is_file(), name
        assert not (run_dir / ".hydra").exists()  # no imitation of Hydra's files
        record = RunDir(run_dir).job()
        assert record.choices["agent"] == t.params["agent"]
        assert record.overrides == t.user_attrs["overrides"]
        assert t.user_attrs["overrides"][-1] == f"agent={t.params['agent']}"

    best = json.loads((tune_dir / "best.json").read_text())
    assert study.best_trial.params == {"agent": "oracle"} == best["params"]
    assert best["value"] == study.best_value
    assert f"best trial: #{best['number']}" in out
    assert best["command"] in out and best["command"].startswith("recsim-train protocol=tiny")


def test_failing_trials_are_recorded_and_the_study_goes_on(tmp_path, capsys):
    space = write_space(
        tmp_path / "space.yaml",
        {"overrides": ["agent=linucb"], "params": {"agent.alpha": {"low": -1.0, "high": 1.0}}},
    )
    storage = f"sqlite:///{tmp_path / 'study.db'}"  # an RDB storage this time
    args = ["--space", str(space), "--storage", storage, "--tune-dir", str(tmp_path / "t")]
    code = main([*args, "--n-trials", "4", "--seed", "1", "--no-prune", "protocol=tiny"])
    assert code == 0
    trials = optuna.load_study(study_name="space", storage=storage).get_trials()
    states = [t.state for t in trials]
    assert len(trials) == 4 and TrialState.FAIL in states and TrialState.COMPLETE in states
    for t in trials:
        assert (t.state == TrialState.FAIL) == (t.params["agent.alpha"] < 0)
        if t.state == TrialState.FAIL:
            assert "alpha" in t.user_attrs["error"]
            assert "alpha" in (Path(t.user_attrs["run_dir"]) / "error.txt").read_text()
    assert "FAIL" in capsys.readouterr().out


def test_a_study_refuses_trials_of_another_setup(tmp_path, capsys):
    space = write_space(
        tmp_path / "space.yaml",
        {"overrides": ["agent=linucb"], "params": {"agent.alpha": {"low": 0.1, "high": 1.0}}},
    )
    args = ["--space", str(space), "--storage", str(tmp_path / "s.journal"), "--n-trials", "1"]
    args += ["--tune-dir", str(tmp_path / "t"), "protocol=tiny", "protocol.total_steps=128"]
    assert main(args) == 0
    assert main([*args, "env=abrupt"]) == 2  # other fixed overrides: not comparable
    assert "fixed_overrides" in capsys.readouterr().err
    assert main([*args, "--metric", "online/regret"]) == 2
    assert main(args) == 0  # the same setup joins the study
    assert len(load_study(tmp_path / "s.journal", "space").trials) == 2


def test_two_processes_share_one_study_and_the_best_trial_reproduces(tmp_path, subprocess_env):
    space = write_space(
        tmp_path / "space.yaml",
        {
            "overrides": ["agent=linucb"],
            "params": {"agent.alpha": {"low": 0.01, "high": 5.0, "log": True}},
        },
    )
    storage, tune_dir = tmp_path / "shared.journal", tmp_path / "tune"
    command = [str(BIN / "recsim-tune"), "--space", str(space), "--study-name", "shared"]
    command += ["--storage", str(storage), "--tune-dir", str(tune_dir), "--n-trials", "2"]
    command += ["protocol=tiny", "env=stationary"]
    workers = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=subprocess_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output
    study = load_study(storage, "shared")
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.params["agent.alpha"] for t in trials}) == 4  # no point proposed twice
    assert sorted(p.name for p in tune_dir.glob("trial_*")) == [f"trial_000{i}" for i in range(4)]
    # each worker ran two of them
    for output in outputs:
        assert output.count("] recsim-train ") == 2

    best = study.best_trial
    overrides = best.user_attrs["overrides"]
    assert overrides[-1] == f"agent.alpha={best.params['agent.alpha']!r}"
    repro = tmp_path / "repro"
    result = subprocess.run(
        [str(BIN / "recsim-train"), *overrides, f"hydra.run.dir={repro}"],
        cwd=tmp_path,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((repro / "summary.json").read_text())
    assert summary["online/reward"] == best.value
    trial_summary = json.loads((Path(best.user_attrs["run_dir"]) / "summary.json").read_text())
    assert summary["eval/return"] == trial_summary["eval/return"]


def test_resolve_setup_merges_the_space_and_the_command_line():
    space = SearchSpace.from_dict(
        {
            "overrides": ["agent=dqn", "env=abrupt"],
            "metric": "eval/return",
            "params": {
                "agent.lr": {"low": 1e-4, "high": 1e-2, "log": True},
                "agent.gamma": {"low": 0.5, "high": 0.99},
            },
        }
    )
    eff, fixed, metric = resolve_setup(space, ["env=stationary", "agent.gamma=0.9"], None)
    assert metric == "eval/return"
    assert set(eff.params) == {"agent.lr"}  # fixed on the command line: not searched
    assert fixed == [
        "agent=dqn",
        "env=stationary",
        "agent.gamma=0.9",
        "optimize_metric=eval/return",
    ]
    _, _, metric = resolve_setup(space, [], "online/regret")
    assert metric == "online/regret"
    with pytest.raises(ConfigError, match=r"agent\.lr"):
        resolve_setup(space, ["agent=random"], None)  # random has no lr
