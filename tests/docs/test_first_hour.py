"""The "first hour" of the docs' Getting started page, command by command (issue 24; it moved from
the README to ``docs/getting-started.md`` with issue 20).

The block between ``<!-- first-hour:begin -->`` and ``<!-- first-hour:end -->`` is read from the
page and every line of it is run, in order, in a temporary directory:

* ``make install`` as ``make -n install`` (a dry run: the target exists and parses; a real install
  into the test's venv is what the test runs in already);
* ``source .venv/bin/activate`` with this test's venv: the console scripts must then be on PATH;
* ``recsim-train`` / ``recsim-compare`` lines as they are, plus a tiny protocol budget at the end
  (``protocol.total_steps=320 ...``), through shims that run ``python -m experiments.train`` /
  ``experiments.compare`` of *this* checkout (the venv's console scripts are the same ``main``
  functions, ``[project.scripts]`` in pyproject.toml, but of the checkout that was installed);
  ``<date>`` is the sweep dir the sweep printed;
* ``wandb sync``: not uploaded (no network in tests); the glob it is given must match the offline
  run that the ``logger=wandb`` line wrote, and ``wandb`` must be on PATH.

The fast test checks the block's shape and composes its presets; the slow one runs it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting-started.md"
VENV_BIN = Path(sys.executable).parent
TINY = (
    "protocol.total_steps=320 protocol.log_every=32 protocol.eval_every=160 "
    "protocol.checkpoint_every=320 protocol.eval_episodes=4"
)


def first_hour_commands() -> list[str]:
    text = PAGE.read_text()
    match = re.search(
        r"<!-- first-hour:begin -->\n```bash\n(.*?)```\n<!-- first-hour:end -->", text, re.S
    )
    assert match, "the Getting started page lost its first-hour block"
    commands = []
    for line in match.group(1).splitlines():
        command = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()  # drop the comment
        if command:
            commands.append(command)
    return commands


def test_the_block_is_the_first_hour_and_its_presets_compose():
    commands = first_hour_commands()
    heads = [shlex.split(c)[0] for c in commands]
    assert heads[:2] == ["make", "source"] and "wandb" in heads
    assert commands[1] == "source .venv/bin/activate"
    # the first hour is on the Getting started page, which the README links to
    assert "## The first hour" in PAGE.read_text()
    assert "(docs/getting-started.md)" in (ROOT / "README.md").read_text()
    # the sweep is a named preset (no hand-written grid on the command line)
    sweep_line = next(c for c in commands if "experiment=first_sweep" in c)
    assert sweep_line == "recsim-train experiment=first_sweep"
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        cfg = compose("config", ["experiment=first_sweep"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert {k: str(v) for k, v in params.items()} == {
        "agent": "dqn",
        "agent.gamma": "0.0,0.9,0.99",
        "agent.exploration_fraction": "0.1,0.5",
        "agent.lr": "1e-4,1e-3",
        "seed": "0,1",
    }
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    # the console scripts the block calls are the modules the slow test runs
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["recsim-train"] == "experiments.run.cli:main"
    assert scripts["recsim-compare"] == "experiments.analysis.compare.cli:main"
    from experiments import compare, train
    from experiments.analysis.compare import cli as compare_cli
    from experiments.run import cli as train_cli

    assert train.main is train_cli.main and compare.main is compare_cli.main
    # the plug-in's YAML file names the plug-in's class
    plugin_yaml = ROOT / "examples" / "plugin" / "my_conf" / "agent" / "topic_ctr.yaml"
    assert "_target_: my_recsys.agent.TopicCTR" in plugin_yaml.read_text()


def _shims(bin_dir: Path) -> None:
    bin_dir.mkdir()
    for name, module in (
        ("recsim-train", "experiments.train"),
        ("recsim-compare", "experiments.compare"),
    ):
        shim = bin_dir / name
        shim.write_text(
            "#!/bin/sh\n"
            f'export PYTHONPATH="{ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
            f'exec "{sys.executable}" -m {module} "$@"\n'
        )
        shim.chmod(0o755)


@pytest.mark.slow
def test_every_first_hour_command_runs(tmp_path):
    work = tmp_path / "clone"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    shims = tmp_path / "bin"
    _shims(shims)
    env = {
        "PATH": f"{shims}:{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),  # no netrc, no W&B key: logger=wandb goes offline
        "OMP_NUM_THREADS": "1",
        "WANDB_SILENT": "true",
    }

    def sh(command: str, timeout: float = 900) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, (
            f"{command}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
        return result

    sweep_dir: Path | None = None
    ran = []
    for command in first_hour_commands():
        head = shlex.split(command)[0]
        if command.startswith("make install"):
            sh(f"make -n -C {shlex.quote(str(ROOT))} install")
        elif command == "source .venv/bin/activate":
            found = sh(
                f"source {shlex.quote(str(VENV_BIN / 'activate'))} && command -v recsim-train "
                "recsim-compare wandb"
            ).stdout.split()
            assert [Path(p).parent for p in found] == [VENV_BIN] * 3, found
        elif head == "wandb":
            assert shlex.split(command)[1] == "sync"
            pattern = shlex.split(command)[2]
            offline = sorted(work.glob(pattern))
            assert offline and all(p.is_dir() for p in offline), pattern
            assert sorted(offline[0].glob("run-*.wandb"))  # what `wandb sync` uploads
            sh("command -v wandb")
        elif "recsim-train" in command:
            result = sh(f"{command} {TINY}")
            if "experiment=first_sweep" in command:
                stamps = sorted((work / "multirun" / "first_sweep").iterdir())
                assert len(stamps) == 1
                sweep_dir = stamps[0]
                assert f"24 job(s) completed in multirun/first_sweep/{sweep_dir.name}" in (
                    result.stdout + result.stderr
                )
                assert "[sweep] 24/24 jobs done" in result.stdout
        elif head == "recsim-compare":
            if "<date>" in command:
                assert sweep_dir is not None
                command = command.replace("<date>", sweep_dir.name)
            sh(f"{command} --reps 500")
        else:
            pytest.fail(f"a first-hour command this test does not know how to run: {command}")
        ran.append("recsim-train" if "recsim-train" in command else head)
    assert ran.count("recsim-train") == 3 and ran.count("recsim-compare") == 2

    # the sweep: 24 completed jobs of our DQN; its report in its own dir, 12 groups of 2 seeds
    assert sweep_dir is not None
    jobs = [p for p in sweep_dir.iterdir() if p.name.isdigit()]
    assert len(jobs) == 24
    assert all(json.loads((j / "summary.json").read_text())["status"] == "completed" for j in jobs)
    results = json.loads((sweep_dir / "report" / "results.json").read_text())
    assert len(results["group_order"]) == 12
    for group in results["groups"].values():
        assert group["n_runs"] == 2 and sorted(group["seeds"]) == [0, 1] and not group["notes"]
    # W&B: the offline run compared from its files alone
    wandb_results = json.loads(
        (work / "outputs" / "first_wandb" / "report" / "results.json").read_text()
    )
    assert wandb_results["counts"] == {"completed": 1} and wandb_results["group_order"] == [
        "linucb"
    ]
    # the plug-in agent trained through the runner
    plugin = [
        p
        for p in (work / "outputs").rglob("summary.json")
        if "TopicCTR" in (p.parent / "config.yaml").read_text()
    ]
    assert len(plugin) == 1 and json.loads(plugin[0].read_text())["status"] == "completed"
    _ = os
