"""A run dir is data, never code (issue 19): a payload planted in any file that a resume reads —
``config.yaml``, ``run.json``, ``.hydra/``, ``summary.json``, the checkpoint's manifest and state,
every agent's own checkpoint files (plain-data trees, torch files, SB3 zips, a frozen agent's
``frozen.json`` and inner checkpoint) — never runs, and the resume ends with a clear error.

Each payload would create a marker directory when it runs (``os.mkdir`` called by unpickling,
``exec`` or ``instantiate``); every test asserts that the marker does not exist.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from agents.baselines import FrozenAgent, RandomAgent
from experiments.run.checkpoint import write_manifest
from experiments.run.cli import route_resume_argv
from experiments.run.config import ConfigError
from experiments.run.job import run
from experiments.run.rundir import RunDir, RunDirError
from experiments.run.trust import UntrustedTarget, project_targets

RESUME = ("resume=true", "protocol.total_steps=1280")


class Payload:
    """Unpickling it creates ``path`` (a directory): the sign that a planted pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def exec_code(marker: Path) -> str:
    return f"import os; os.mkdir({str(marker)!r})"


# ---------------------------------------------------------------------------------------- runs
AGENTS = {
    "random": ["agent=random"],
    "linucb": ["agent=linucb"],
    "dqn": ["agent=dqn", "agent.learning_starts=64", "agent.hidden_sizes=[8]"],
    "pqn": ["agent=pqn"],
    "sb3_dqn": ["agent=sb3_dqn", "agent.learning_starts=64", "agent.hidden_sizes=[8]"],
    "sb3_ppo": ["agent=sb3_ppo", "agent.n_steps=8", "agent.batch_size=32"],
    "frozen_linucb": ["agent=frozen", "agent.learn_steps=320"],
    "frozen_dqn": [
        "agent=frozen",
        "agent@agent.inner=dqn",
        "agent.inner.learning_starts=64",
        "agent.learn_steps=320",
    ],
    "frozen_sb3": [
        "agent=frozen",
        "agent@agent.inner=sb3_dqn",
        "agent.inner.learning_starts=64",
        "agent.learn_steps=320",
    ],
}
SB3 = {"sb3_dqn", "sb3_ppo", "frozen_sb3"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, compose_cfg):
    """One finished tiny run per agent kind (copied by each test before planting)."""
    made: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in made:
            path = tmp_path_factory.mktemp(kind) / "run"
            run(compose_cfg("protocol=tiny", "progress=false", *AGENTS[kind]), run_dir=path)
            made[kind] = path
        return made[kind]

    return get


def copy_run(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


def resume_fails(run_dir: Path, kind: str, tiny_cfg, *extra: str) -> str:
    """Resume ``run_dir`` as its owner would; it must fail with a clear error. Returns it."""
    before = (run_dir / "summary.json").read_bytes()
    with pytest.raises((RunDirError, ConfigError)) as info:
        run(tiny_cfg(*AGENTS[kind], *RESUME, *extra), run_dir=run_dir, overrides=list(RESUME))
    assert (run_dir / "summary.json").read_bytes() == before  # the record stays as it was
    return str(info.value)


def checkpoint_files(run_dir: Path) -> list[Path]:
    (ckpt,) = RunDir(run_dir).checkpoints()
    return [p for p in sorted(ckpt.path.rglob("*")) if p.is_file() and p != ckpt.manifest]


def reseal(run_dir: Path) -> None:
    """Rewrite the manifest, as a careful attacker would: the files look as written."""
    for ckpt in RunDir(run_dir).checkpoints():
        write_manifest(ckpt)


def plant_typed(path: Path, marker: Path) -> None:
    """A pickle in the file's own format: an SB3 zip's cloudpickled ``data`` entry, an object
    array in a ``.npz`` tree, a pickled object in a torch file, a raw pickle otherwise."""
    import torch

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            entries = {n: archive.read(n) for n in names}
        if "data" in names:  # SB3: data is JSON with cloudpickled (":serialized:") entries
            data = json.loads(entries["data"])
            data["action_space"] = {
                ":type:": "<class 'x'>",
                ":serialized:": base64.b64encode(pickle.dumps(Payload(marker))).decode(),
            }
            entries["data"] = json.dumps(data).encode()
            with zipfile.ZipFile(path, "w") as archive:
                for name, blob in entries.items():
                    archive.writestr(name, blob)
            return
        if any(n.endswith(".npy") for n in names):  # a plain-data tree (.npz)
            with open(path, "wb") as f:
                np.savez(f, payload=np.array([Payload(marker)], dtype=object))
            return
        torch.save({"payload": Payload(marker)}, path)  # a torch zip
        return
    path.write_bytes(pickle.dumps(Payload(marker)))


# ---------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("kind", list(AGENTS))
@pytest.mark.parametrize("how", ["raw_pickle", "typed"])
def test_a_pickle_planted_in_any_checkpoint_file_never_runs(
    kind, how, finished, tmp_path, tiny_cfg
):
    """Every file of the checkpoint (the agent's own files, the state) replaced by a pickle, the
    manifest resealed: resuming refuses, with or without trust_checkpoints for non-SB3 agents."""
    run_dir = copy_run(finished(kind), tmp_path)
    marker = tmp_path / "pwned"
    for path in checkpoint_files(run_dir):
        if path.name == "frozen.json":
            continue  # its own test below
        if how == "raw_pickle":
            path.write_bytes(pickle.dumps(Payload(marker)))
        else:
            plant_typed(path, marker)
    reseal(run_dir)
    message = resume_fails(run_dir, kind, tiny_cfg)
    assert not marker.exists()
    assert "no intact checkpoint to resume" in message or "trust_checkpoints=true" in message
    # trusting checkpoints changes nothing where the state (read first) or the format is ours
    message = resume_fails(run_dir, kind, tiny_cfg, "trust_checkpoints=true")
    assert "no intact checkpoint to resume" in message, message
    assert not marker.exists()


def test_an_sb3_zip_loads_only_when_trusted(finished, tmp_path, tiny_cfg):
    """Only the SB3 zip planted (the state intact): refused, and the error says how to trust."""
    run_dir = copy_run(finished("sb3_dqn"), tmp_path)
    marker = tmp_path / "pwned"
    (zip_path,) = [p for p in checkpoint_files(run_dir) if p.name == "agent"]
    plant_typed(zip_path, marker)
    reseal(run_dir)
    message = resume_fails(run_dir, "sb3_dqn", tiny_cfg)
    assert "loads only with trust_checkpoints=true" in message and "cloudpickle" in message
    assert not marker.exists()
    assert (zip_path.parent / zip_path.name).exists()  # left where it was


@pytest.mark.parametrize(
    "inner_class",
    [
        "stable_baselines3.DQN",
        "builtins.exec",
        "os.system",
        "agents.baselines.frozen.shutil.rmtree",
    ],
)
def test_frozen_json_never_chooses_the_inner_class(inner_class, finished, tmp_path, tiny_cfg):
    run_dir = copy_run(finished("frozen_linucb"), tmp_path)
    marker = tmp_path / "pwned"
    (meta,) = [p for p in checkpoint_files(run_dir) if p.name == "frozen.json"]
    data = json.loads(meta.read_text())
    data["inner_class"] = inner_class
    meta.write_text(json.dumps(data))
    inner = meta.parent / "inner"
    shutil.rmtree(inner) if inner.is_dir() else inner.unlink()
    # an SB3 zip whose data holds a cloudpickled payload (what SB3's own load would unpickle)
    (sb3_agent,) = [p for p in checkpoint_files(finished("sb3_dqn")) if p.name == "agent"]
    shutil.copy(sb3_agent, inner)
    plant_typed(inner, marker)
    reseal(run_dir)
    message = resume_fails(run_dir, "frozen_linucb", tiny_cfg, "trust_checkpoints=true")
    assert "frozen.json never chooses the class" in message, message
    assert not marker.exists()
    # the Python API without the config's class: only the project's own agent classes, and an
    # SB3 inner agent only when trusted
    with pytest.raises(ValueError, match=r"inner_class|trust_checkpoints=true"):
        FrozenAgent.load(meta.parent)
    assert not marker.exists()


def test_frozen_sb3_inner_needs_trust_and_resumes_with_it(finished, tmp_path, tiny_cfg):
    run_dir = copy_run(finished("frozen_sb3"), tmp_path)
    message = resume_fails(run_dir, "frozen_sb3", tiny_cfg)
    assert "trust_checkpoints=true" in message
    run(
        tiny_cfg(*AGENTS["frozen_sb3"], *RESUME, "trust_checkpoints=true"),
        run_dir=run_dir,
        overrides=[*RESUME, "trust_checkpoints=true"],
    )
    assert RunDir(run_dir).state().summary["num_timesteps"] == 1280


def test_a_trusted_sb3_run_resumes_and_trust_is_never_read_from_the_run_dir(
    finished, tmp_path, tiny_cfg
):
    run_dir = copy_run(finished("sb3_dqn"), tmp_path)
    config = run_dir / "config.yaml"
    config.write_text(
        config.read_text().replace("trust_checkpoints: false", "trust_checkpoints: true")
    )
    assert "trust_checkpoints: true" in config.read_text()
    message = resume_fails(run_dir, "sb3_dqn", tiny_cfg)  # the saved `true` does not count
    assert "loads only with trust_checkpoints=true" in message


# ---------------------------------------------------------------------------------------- config.yaml
def _config_plants(marker: Path) -> dict[str, tuple[str, object]]:
    gadget = {"_target_": "builtins.exec", "_args_": [exec_code(marker)]}
    return {
        "nested under agent": ("agent.seed", gadget),
        "agent target": ("agent._target_", "builtins.exec"),
        "a sink": ("logger.sinks.evil", gadget),
        "protocol part": ("protocol.evil", gadget),
        "a planted part": ("protocol.parts.evil", gadget),
        "a part's class": ("protocol.parts.online._target_", "builtins.exec"),
        "top level": ("evil", gadget),
        "frozen inner": ("agent.inner", gadget),
        "write_text": (
            "agent.seed",
            {"_target_": "pathlib.Path.write_text", "_args_": [str(marker), "x"]},
        ),
        "interpolation": ("agent.name", "${oc.env:HOME}"),
    }


@pytest.mark.parametrize("case", list(_config_plants(Path("x"))))
def test_config_yaml_never_chooses_what_code_runs(case, finished, tmp_path, tiny_cfg):
    kind = "frozen_linucb" if case == "frozen inner" else "linucb"
    run_dir = copy_run(finished(kind), tmp_path)
    marker = tmp_path / "pwned"
    key, value = _config_plants(marker)[case]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(UntrustedTarget) as info:
        run(tiny_cfg(*AGENTS[kind], *RESUME), run_dir=run_dir, overrides=list(RESUME))
    message = str(info.value)
    assert not marker.exists() and not (run_dir / "error.txt").exists()
    assert key in message and "config.yaml" in message
    if case != "interpolation":
        assert "not one of the project's classes" in message and "name it yourself" in message


class MyAgent(RandomAgent):
    """A user's own agent class (not in conf/)."""


def test_a_users_own_class_resumes_when_the_user_names_it(tmp_path, tiny_cfg):
    mine = [f"agent._target_={__name__}.MyAgent"]
    run(tiny_cfg("agent=random", *mine), run_dir=tmp_path)
    with pytest.raises(UntrustedTarget, match=rf"agent._target_={__name__}.MyAgent"):
        run(tiny_cfg("agent=random", *RESUME), run_dir=tmp_path, overrides=list(RESUME))
    run(tiny_cfg("agent=random", *mine, *RESUME), run_dir=tmp_path, overrides=list(RESUME))
    assert RunDir(tmp_path).state().summary["num_timesteps"] == 1280


def test_the_allow_list_comes_from_the_projects_conf_and_agent_catalog():
    targets = project_targets()
    assert {
        "agents.sb3.SB3DQN",
        "agents.baselines.FrozenAgent",
        "experiments.run.sinks.CsvSink",
        "experiments.integrations.wandb_sink.WandbSink",
    } <= targets
    assert "builtins.exec" not in targets


# ---------------------------------------------------------------------------------------- run.json, .hydra, summary
def test_run_json_and_hydra_files_never_choose_config_files(finished, tmp_path):
    run_dir = copy_run(finished("linucb"), tmp_path)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "x.yaml").write_text(
        yaml.safe_dump({"_target_": "builtins.exec", "_args_": [exec_code(marker)]})
    )
    record = json.loads((run_dir / "run.json").read_text())
    for choice in ("../../../../../" + str(evil / "x"), "linucb,dqn", "linucb hydra.mode=RUN"):
        record["choices"] = {"agent": choice}
        (run_dir / "run.json").write_text(json.dumps(record))
        with pytest.raises(ConfigError, match=r"run.json \(allowed: an option of conf/agent/"):
            route_resume_argv(["recsim-train", f"resume={run_dir}"])
    # run.json of the wrong types is not trusted either (read as unreadable)
    (run_dir / "run.json").write_text(json.dumps({"run_id": {"_target_": "builtins.exec"}}))
    assert RunDir(run_dir).job().run_id == ""
    # with no run.json, .hydra/hydra.yaml's choices are checked the same way
    (run_dir / "run.json").unlink()
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(exist_ok=True)
    (hydra_dir / "hydra.yaml").write_text(
        yaml.safe_dump({"hydra": {"runtime": {"choices": {"agent": "../../" + str(evil / "x")}}}})
    )
    with pytest.raises(ConfigError, match="conf/agent/"):
        route_resume_argv(["recsim-train", f"resume={run_dir}"])
    assert not marker.exists()


def test_payloads_in_summary_run_json_and_manifest_are_only_data(finished, tmp_path, tiny_cfg):
    """Data planted where the runner reads only data: the resume goes on and nothing runs."""
    run_dir = copy_run(finished("linucb"), tmp_path)
    marker = tmp_path / "pwned"
    gadget = {"_target_": "builtins.exec", "_args_": [exec_code(marker)]}
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["evil"] = gadget
    (run_dir / "summary.json").write_text(json.dumps(summary))
    record = json.loads((run_dir / "run.json").read_text())
    record["overrides"] = [*record["overrides"], "agent._target_=builtins.exec"]
    record["name"] = "${oc.env:HOME}"
    (run_dir / "run.json").write_text(json.dumps(record))
    (ckpt,) = RunDir(run_dir).checkpoints()
    manifest = json.loads(ckpt.manifest.read_text())
    manifest["evil"] = gadget
    ckpt.manifest.write_text(json.dumps(manifest))
    run(tiny_cfg(*AGENTS["linucb"], *RESUME), run_dir=run_dir, overrides=list(RESUME))
    assert not marker.exists()
    assert RunDir(run_dir).state().summary["num_timesteps"] == 1280


def test_recsim_train_refuses_a_planted_config_with_exit_2_and_no_traceback(
    finished, tmp_path, subprocess_env
):
    import subprocess
    import sys

    run_dir = copy_run(finished("linucb"), tmp_path)
    marker = tmp_path / "pwned"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["agent"]["seed"] = {"_target_": "builtins.exec", "_args_": [exec_code(marker)]}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    summary = (run_dir / "summary.json").read_bytes()
    result = subprocess.run(
        [str(Path(sys.executable).parent / "recsim-train"), f"resume={run_dir}"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=300,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "agent.seed._target_='builtins.exec'" in result.stderr
    assert "Traceback" not in result.stderr and not marker.exists()
    assert (run_dir / "summary.json").read_bytes() == summary
