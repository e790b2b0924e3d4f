"""Per-(agent, env) tuned presets, ``conf/agent/tuned/<agent>/<env>.yaml`` (issue 23): every preset
composes through Hydra with its pair, validates and builds its agent; explicit overrides win; a pair
without a preset composes exactly as before; a run records the preset it used in ``run.json`` and
``recsim-compare`` names it (``defaults`` where none)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from experiments.analysis.compare.cli import main as compare_main
from experiments.run.config import instantiate_checked, validate
from experiments.run.job import make_env, run
from experiments.run.overrides import PRESET_GROUP, clean_choices

CONF = Path(__file__).resolve().parents[2] / "conf"
TINY = ("protocol=tiny", "progress=false")  # a run of a few seconds (as tests/conftest.py)

PRESETS = sorted((CONF / PRESET_GROUP).glob("*/*.yaml"))
PAIRS = [(p.parent.name, p.stem) for p in PRESETS]
# each preset's search is recorded in one of the tuning study's pages, under "## `agent/env`"
STUDY_DOCS = sorted((CONF.parent / "docs/studies/tuning").glob("*.md"))


def composed(*overrides: str) -> tuple[Any, dict[str, str]]:
    """The composed config (without ``hydra``) and its group choices, as the runner gets them."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    choices = clean_choices(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def test_the_issue_23_presets_exist() -> None:
    assert {("pqn", "long_term"), ("sb3_dqn", "long_term")} <= set(PAIRS)
    for agent, env in PAIRS:  # every preset belongs to an existing agent and env option
        assert (CONF / "agent" / f"{agent}.yaml").is_file(), agent
        assert (CONF / "env" / f"{env}.yaml").is_file(), env


@pytest.mark.parametrize("path", PRESETS, ids=[f"{a}/{e}" for a, e in PAIRS])
def test_preset_composes_validates_builds_and_records_its_search(path: Path) -> None:
    agent, env = path.parent.name, path.stem
    values = yaml.safe_load(path.read_text())
    assert isinstance(values, dict) and values
    cfg, choices = composed(f"agent={agent}", f"env={env}")
    assert choices[PRESET_GROUP] == f"{agent}/{env}"
    for key, value in values.items():
        assert OmegaConf.to_container(cfg.agent)[key] == value, key
    defaults, _ = composed(f"agent={agent}", f"env={env}", f"~{PRESET_GROUP}")
    assert any(OmegaConf.to_container(defaults.agent).get(k) != v for k, v in values.items())
    typed = validate(cfg)  # the runner's checks
    built = instantiate_checked(cfg.agent, "agent", env=make_env(typed.env))
    assert type(built).__name__  # construction validated every hyperparameter
    # the header says how it was found: the command (a search, or the runs compared), the tuning
    # seeds, the budget
    header = path.read_text().split("\n\n")[0]
    assert "recsim-tune" in header or "recsim-train" in header, header
    for needed in ("seed=", "protocol.total_steps=", "docs/studies/tuning"):
        assert needed in header, (needed, header)
    assert any(f"## `{agent}/{env}`" in doc.read_text() for doc in STUDY_DOCS if doc.is_file())


@pytest.mark.parametrize(("agent", "env"), PAIRS[:1])
def test_command_line_overrides_win_over_the_preset(agent: str, env: str) -> None:
    cfg, _ = composed(f"agent={agent}", f"env={env}", "agent.lr=0.0123", "agent.gamma=0.5")
    assert cfg.agent.lr == 0.0123 and cfg.agent.gamma == 0.5


@pytest.mark.parametrize(
    ("agent", "env"),
    [
        ("dqn", "cold_start"),
        ("dqn", "movielens"),
        ("adaptive_dqn", "movielens"),
        ("dqn", "long_term"),
    ],
)
def test_a_pair_without_preset_composes_as_before(agent: str, env: str) -> None:
    assert (agent, env) not in PAIRS
    cfg, choices = composed(f"agent={agent}", f"env={env}")
    before, _ = composed(f"agent={agent}", f"env={env}", f"~{PRESET_GROUP}")
    assert OmegaConf.to_container(cfg) == OmegaConf.to_container(before)
    assert choices[PRESET_GROUP] == f"{agent}/{env}"  # Hydra names it; run.json will not (below)


def test_run_json_and_recsim_compare_name_the_preset(tmp_path: Path) -> None:
    agent, env = "pqn", "long_term"
    jobs = {
        "tuned": [f"agent={agent}", f"env={env}"],
        "defaults": [f"agent={agent}", f"env={env}", f"~{PRESET_GROUP}"],
        "no_preset": ["agent=random", f"env={env}"],
    }
    for name, overrides in jobs.items():
        overrides = [*overrides, *TINY, "protocol.eval_episodes=2"]
        cfg, choices = composed(*overrides)
        run(cfg, tmp_path / "runs" / name, multirun=False, overrides=overrides, choices=choices)
    recorded = {
        name: json.loads((tmp_path / "runs" / name / "run.json").read_text())["choices"]
        for name in jobs
    }
    assert recorded["tuned"][PRESET_GROUP] == "pqn/long_term"
    assert PRESET_GROUP not in recorded["defaults"]
    assert PRESET_GROUP not in recorded["no_preset"]  # Hydra's choice random/long_term: no file

    assert compare_main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    with open(tmp_path / "report" / "runs.csv") as f:
        presets = {Path(row["path"]).name: row["preset"] for row in csv.DictReader(f)}
    assert presets == {"tuned": "pqn/long_term", "defaults": "defaults", "no_preset": "defaults"}
    report = (tmp_path / "report" / "report.md").read_text()
    assert "pqn/long_term" in report
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert {r["preset"] for r in results["runs"]} == {"pqn/long_term", "defaults"}
