"""A plug-in agent from outside the project trains through ``recsim-train`` unchanged.

The agent (``examples/plugin/``, docs/plugin.md's) is copied to a temporary directory (not under ``agents/``), reaches the
runner only through ``PYTHONPATH`` and Hydra's ``_target_`` — no fork, no registry — and is selected
two ways: as a config group option on Hydra's search path (``agent=topic_ctr`` with
``hydra.searchpath=[file://...]``) and by overriding ``agent._target_``. Every run is the real
console script in a subprocess, so the plug-in goes through exactly the code path of our agents.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from recsim_env.state_io import load_tree

ROOT = Path(__file__).resolve().parents[2]
RECSIM_TRAIN = Path(sys.executable).parent / "recsim-train"

# The documented plug-in agent (docs/plugin.md) and its config group option, as the project ships them
EXAMPLE = ROOT / "examples" / "plugin"

COMMON = ["env=stationary", "seed=0", "protocol=tiny", "protocol.total_steps=3200"]


def write_plugin(root: Path) -> tuple[Path, Path]:
    """``<root>/src/my_recsys/agent.py`` and ``<root>/conf/agent/topic_ctr.yaml``."""
    shutil.copytree(EXAMPLE / "my_recsys", root / "src" / "my_recsys")
    shutil.copytree(EXAMPLE / "my_conf", root / "conf")
    return root / "src", root / "conf"


def start(run_dir: Path, *overrides: str, pythonpath: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled", PYTHONPATH=str(pythonpath))
    return subprocess.Popen(
        [str(RECSIM_TRAIN), *COMMON, *overrides, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent,  # not the repo: the plug-in is found through PYTHONPATH only
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output
    return output


def test_plugin_agent_trains_through_recsim_train_and_beats_random(tmp_path):
    src, conf = write_plugin(tmp_path / "plugin")
    assert not (ROOT / "agents" / "my_recsys").exists()
    runs = tmp_path / "runs"
    runs.mkdir()
    processes = {
        # a config group option from the user's own search path
        "group": start(
            runs / "group", "agent=topic_ctr", f"hydra.searchpath=[file://{conf}]", pythonpath=src
        ),
        # or any importable class, straight from the command line
        "target": start(
            runs / "target",
            "agent=random",  # a config with nothing but the seed, then the plug-in's _target_
            "agent._target_=my_recsys.agent.TopicCTR",
            pythonpath=src,
        ),
        "random": start(runs / "random", "agent=random", pythonpath=src),
    }
    for process in processes.values():
        finish(process)
    summaries = {k: json.loads((runs / k / "summary.json").read_text()) for k in processes}

    # the normal outputs of a run
    group = runs / "group"
    config = (group / "config.yaml").read_text()
    assert "_target_: my_recsys.agent.TopicCTR" in config and "epsilon: 0.1" in config
    assert summaries["group"]["status"] == "completed"
    assert summaries["group"]["num_timesteps"] == 3200
    metrics = pd.read_csv(group / "metrics.csv")
    assert {"online/reward", "eval/return", "eval/ndcg@k"} <= set(metrics.key)  # scores() ranks
    checkpoint = group / "checkpoints" / "step_000000003200"
    assert (checkpoint / "state.npz").is_file()  # the protocol's state: JSON + npz, no pickle
    saved = load_tree(checkpoint / "agent")  # OnlineAgent.save: hparams + state_dict, no pickle
    assert saved["class"] == "TopicCTR" and saved["hparams"] == {"epsilon": 0.1, "seed": 0}
    # it learned: the per-topic statistics moved away from the prior ...
    assert saved["state"]["shows"].sum() > 3000
    rates = saved["state"]["clicks"] / saved["state"]["shows"]
    assert rates.max() - rates.min() > 0.1
    # ... and it earns more while learning than random on the same stream (measured here)
    assert summaries["group"]["online/reward"] > 1.2 * summaries["random"]["online/reward"]
    assert summaries["group"]["eval/return"] > summaries["random"]["eval/return"]

    # both ways of selecting it build the same agent: the same run, step for step
    same = ("online/reward", "online/regret", "eval/return", "eval/ndcg@k")
    assert {k: summaries["target"][k] for k in same} == {k: summaries["group"][k] for k in same}


def test_a_missing_plugin_names_the_target(tmp_path):
    """Without the plug-in on PYTHONPATH the error says which module could not be imported."""
    run_dir = tmp_path / "run"
    process = start(
        run_dir, "agent=random", "agent._target_=my_recsys.agent.TopicCTR", pythonpath=tmp_path
    )
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 2, output
    assert "agent._target_" in output and "my_recsys" in output
