"""Secrets never reach a file (issue 19): every way to pass one — the environment, ``hydra.job.
env_set`` in every form (``+key=``, ``++key=``, the mapping ``'++hydra.job.env_set={KEY: ...}'``),
a config key whose name looks secret, a W&B setting, an interpolation into an innocent key — is
absent from every file of the run dir (``.hydra/``, ``config.yaml``, ``run.json``, ``train.log``,
``summary.json``, ``error.txt``) and of the offline W&B run, and from the console output; a
validation message never echoes a secret value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.integrations.wandb_sink import check_settings
from experiments.run.config import ConfigError
from experiments.run.secrets import hide_secret_overrides, redact, scrub

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RECSIM_TRAIN = Path(sys.executable).parent / "recsim-train"

SECRETS = {
    "dict": "sekret-DICT-1234",
    "dict2": "sekret-DICT2-5678",
    "plus": "tok-PLUS-2468",
    "key": "tok-KEY-13579",
    "env": "envtok-ENV-97531",
    "setting": "tok-SET-86420",
}


@pytest.fixture
def env(subprocess_env) -> dict[str, str]:
    return dict(
        subprocess_env,
        PYTHONPATH=os.pathsep.join([str(HERE), subprocess_env["PYTHONPATH"]]),
        MY_SERVICE_TOKEN=SECRETS["env"],
        WANDB_MODE="offline",
    )


def recsim_train(args: list[str], env: dict[str, str]):
    return subprocess.run(
        [str(RECSIM_TRAIN), *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )


class SecretProbe:
    """A sink that records whether each secret reached the job (never the secrets themselves)."""

    def __init__(self, context, token=None, note=None, **kwargs):
        got = {
            "dict": os.environ.get("WANDB_API_KEY") == SECRETS["dict"],
            "dict2": os.environ.get("OTHER_PASSWORD") == SECRETS["dict2"],
            "plus": os.environ.get("HF_TOKEN") == SECRETS["plus"],
            "key": token == SECRETS["key"],
            "env": note == SECRETS["env"],
        }
        (context.run_dir / "probe.json").write_text(json.dumps(got))

    def write(self, step, metrics):
        pass

    def write_summary(self, summary):
        pass

    def close(self):
        pass


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def assert_nowhere(run_dir: Path, result, values) -> None:
    files = files_under(run_dir)
    for path in files:
        data = path.read_bytes()
        for value in values:
            assert value.encode() not in data, f"{value} in {path}"
    for value in values:
        assert value not in result.stdout + result.stderr


def test_every_way_to_pass_a_secret_reaches_the_job_but_no_file(tmp_path, env):
    run_dir = tmp_path / "run"
    result = recsim_train(
        [
            "agent=random",
            "protocol=tiny",
            "logger=wandb",
            "logger.sinks.wandb.mode=offline",
            f"++hydra.job.env_set={{WANDB_API_KEY: {SECRETS['dict']}, "
            f"OTHER_PASSWORD: '{SECRETS['dict2']}', PLAIN: ok}}",
            f"+hydra.job.env_set.HF_TOKEN={SECRETS['plus']}",
            "+logger.sinks.probe._target_=test_secrets.SecretProbe",
            f"+logger.sinks.probe.token={SECRETS['key']}",
            "+logger.sinks.probe.note=${oc.env:MY_SERVICE_TOKEN}",
            f"hydra.run.dir={run_dir}",
        ],
        env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((run_dir / "probe.json").read_text()) == {
        "dict": True,
        "dict2": True,
        "plus": True,
        "key": True,
        "env": True,
    }
    files = files_under(run_dir)
    names = {p.relative_to(run_dir).as_posix() for p in files}
    assert {".hydra/hydra.yaml", ".hydra/overrides.yaml", ".hydra/config.yaml"} <= names
    assert {"config.yaml", "run.json", "train.log", "summary.json"} <= names
    assert any("wandb" in p.parts and "offline-run" in str(p) for p in files), names
    assert_nowhere(run_dir, result, SECRETS.values())
    assert "PLAIN: ok" in (run_dir / ".hydra" / "hydra.yaml").read_text()  # others kept as given


def test_a_secret_in_a_validation_message_is_not_echoed(tmp_path, env):
    """A secret value that ends up in an invalid value (through an interpolation into an innocent
    key) is masked in the error, error.txt, summary.json and train.log."""
    run_dir = tmp_path / "run"
    result = recsim_train(
        [
            "agent=random",
            "protocol=tiny",
            "protocol.total_steps=${oc.env:MY_SERVICE_TOKEN}",
            f"hydra.run.dir={run_dir}",
        ],
        env,
    )
    assert result.returncode != 0
    assert "invalid protocol.total_steps='***'" in result.stderr, result.stderr
    assert_nowhere(run_dir, result, [SECRETS["env"]])


def test_an_unknown_wandb_setting_names_the_key_never_the_value(tmp_path, env):
    run_dir = tmp_path / "run"
    result = recsim_train(
        [
            "agent=random",
            "protocol=tiny",
            "logger=wandb",
            "logger.sinks.wandb.mode=offline",
            f"+logger.sinks.wandb.settings.my_token={SECRETS['setting']}",
            f"hydra.run.dir={run_dir}",
        ],
        env,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown key(s) logger.sinks.wandb.settings.my_token" in result.stderr
    assert "Traceback" not in result.stderr
    assert_nowhere(run_dir, result, [SECRETS["setting"]])


def test_mapping_overrides_and_scrubbing_by_value():
    environ: dict[str, str] = {}
    argv = hide_secret_overrides(
        ["p", "++hydra.job.env_set={WANDB_API_KEY: abc123456, N: 3}", "+a={b: {password: pw9876}}"],
        environ,
    )
    assert argv[1] == "++hydra.job.env_set={WANDB_API_KEY: ${oc.env:WANDB_API_KEY}, N: 3}"
    assert argv[2] == "+a={b: {password: ${oc.env:RECSIM_SECRET_A_B_PASSWORD}}}"
    assert environ == {"WANDB_API_KEY": "abc123456", "RECSIM_SECRET_A_B_PASSWORD": "pw9876"}
    secrets = {"WANDB_API_KEY": "abc123456", "HOME": "/root/not-a-secret"}
    assert (
        scrub("key abc123456 and /root/not-a-secret", secrets) == "key *** and /root/not-a-secret"
    )
    with pytest.raises(ConfigError, match=r"settings\.my_tokn") as info:
        check_settings({"my_tokn": "tok-XYZ-000"})
    assert "tok-XYZ-000" not in str(info.value)
    assert redact({"a": {"api_key": "x"}, "b": ["y"]}) == {"a": {"api_key": "***"}, "b": ["y"]}
