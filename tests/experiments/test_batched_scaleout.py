"""Scale-out of ``hydra/launcher=batched``: its populations (and ordinary jobs) as submitit jobs
(``batched_slurm``, run here with submitit's local executor) or Ray tasks (``batched_ray``, a
private Ray instance).

What is checked: the presets compose and every option is checked naming its key; a sweep whose
units ran as submitit jobs writes the run dirs the local batched launcher writes (same statuses,
configs and metrics); a worker process that dies fails its own jobs only, recorded in their run
dirs and in ``failures.json``, and the sweep goes on; the same sweep on Ray.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
import test_batched_launcher as batched_launcher_tests
from hydra import compose, initialize_config_dir

from agents.baselines import RandomAgent
from experiments.analysis.compare.load import discover_runs
from experiments.integrations.hydra_callbacks import FAILURES_FILE, scan_sweep
from recsim_env.validation import ConfigError

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TINY = ("protocol=tiny", "protocol.total_steps=320")
SWEEP = ("-m", "agent=dqn,random", "seed=0,1", *TINY)  # one population of 2 + 2 ordinary jobs
LOCAL_SUBMITIT = ("hydra/launcher=batched_slurm", "hydra.launcher.submitit.cluster=local")


def recsim_train(*args: str) -> subprocess.CompletedProcess:
    """``recsim-train`` of this checkout, with this module importable (its test agent)."""
    return batched_launcher_tests.recsim_train(*args, importable=HERE)


def launcher_config(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    return cfg.hydra.launcher


def assert_same_runs(sweep_dir: Path, reference_dir: Path) -> None:
    """``recsim-compare``'s view of two sweeps: the same jobs, configs, statuses and metrics."""
    runs = {tuple(r.overrides): r for r in discover_runs([sweep_dir])}
    refs = {tuple(r.overrides): r for r in discover_runs([reference_dir])}
    assert runs.keys() == refs.keys() and len(runs) == 4
    for overrides, ref in refs.items():
        run = runs[overrides]
        assert run.status == ref.status == "completed"
        assert run.config == ref.config and Path(run.path).name == Path(ref.path).name
        for key in ("online/reward", "eval/return", "num_timesteps"):
            assert math.isclose(run.metric(key), ref.metric(key), rel_tol=1e-4), (overrides, key)


# ------------------------------------------------------------------------------- configuration
def test_scale_out_presets_compose():
    ray = launcher_config("hydra/launcher=batched_ray")
    assert ray._target_.endswith("BatchedLauncher") and ray.backend == "ray"
    assert ray.ray.init.address is None and ray.ray.remote.max_calls == 1
    slurm = launcher_config("hydra/launcher=batched_slurm", "hydra.sweep.dir=/tmp/s")
    assert slurm.backend == "submitit" and slurm.submitit.cluster == "slurm"
    assert slurm.submitit.folder == "/tmp/s/.submitit"  # beside the run dirs
    assert slurm.submitit.parameters.timeout_min > 0
    assert launcher_config("hydra/launcher=batched").backend == "local"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": "gpu"}, "invalid hydra.launcher.backend='gpu' (allowed: one of 'local', "),
        ({"backend": "ray"}, "invalid hydra.launcher.ray=None (allowed: a section"),
        ({"backend": "submitit", "submitit": [1]}, "invalid hydra.launcher.submitit=[1]"),
        (
            {"backend": "ray", "ray": {"init": {}, "remotes": {}}},
            "hydra.launcher.ray",  # check_keys names the section and the unknown key
        ),
    ],
)
def test_scale_out_options_are_checked_naming_the_key(options, message):
    from hydra_plugins.recsim_batched_launcher.batched_launcher import BatchedLauncher

    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        BatchedLauncher(n_jobs=1, max_population=None, **options)
    if "remotes" in str(options):
        assert "remotes" in str(info.value)


@pytest.mark.parametrize(
    ("submitit", "message"),
    [
        ({"cluster": "pbs", "folder": "x"}, "invalid hydra.launcher.submitit.cluster='pbs'"),
        (
            {"cluster": "local", "folder": "x", "parameters": {"timeout": 5}},
            "invalid hydra.launcher.submitit.parameters={'timeout': 5",
        ),
    ],
)
def test_submitit_options_are_checked_before_anything_is_submitted(tmp_path, submitit, message):
    pytest.importorskip("submitit")
    from experiments.integrations.batched_remote import run_remote

    submitit = {**submitit, "folder": str(tmp_path / "s")}
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_remote("submitit", submitit, lambda unit, jobs: [], [], 1)
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


# ------------------------------------------------------------------------------------ submitit
def test_units_as_submitit_jobs_write_the_run_dirs_the_local_launcher_writes(tmp_path):
    pytest.importorskip("submitit")
    dirs = {name: tmp_path / name for name in ("local", "submitit")}
    local = recsim_train(*SWEEP, "hydra/launcher=batched", f"hydra.sweep.dir={dirs['local']}")
    assert local.returncode == 0, local.stdout + local.stderr
    result = recsim_train(*SWEEP, *LOCAL_SUBMITIT, f"hydra.sweep.dir={dirs['submitit']}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 population(s) of 2 job(s), 2 ordinary job(s)" in output and "(submitit)" in output
    assert "4 job(s) completed" in output
    # each unit (the population, each ordinary job) was one submitit job, with its own logs
    assert len(list((dirs["submitit"] / ".submitit").glob("*_log.out"))) == 3
    assert_same_runs(dirs["submitit"], dirs["local"])


class SelfKillingAgent(RandomAgent):
    """Kills its own process (as the out-of-memory killer would) at its first step if seed == 1."""

    def act(self, obs, *, explore=False, info=None):
        if self.seed == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().act(obs, explore=explore, info=info)


def test_a_lost_submitit_job_fails_its_own_jobs_and_the_sweep_goes_on(tmp_path):
    pytest.importorskip("submitit")
    sweep_dir = tmp_path / "sweep"
    agent = "agent._target_=test_batched_scaleout.SelfKillingAgent"
    result = recsim_train(
        "-m", "agent=random", agent, "seed=0,1,2", *TINY, *LOCAL_SUBMITIT,
        f"hydra.sweep.dir={sweep_dir}",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    statuses = {job["dir"].rsplit("/", 1)[-1]: job["status"] for job in scan_sweep(sweep_dir)}
    assert statuses == {"0": "completed", "1": "failed", "2": "completed"}, output
    error = (sweep_dir / "1" / "error.txt").read_text()
    assert "WorkerLost" in error and "submitit job" in error
    failures = json.loads((sweep_dir / FAILURES_FILE).read_text())
    assert [f["dir"].rsplit("/", 1)[-1] for f in failures] == ["1"]


# ----------------------------------------------------------------------------------------- Ray
@pytest.mark.slow
def test_units_as_ray_tasks_write_the_run_dirs_the_local_launcher_writes(tmp_path):
    pytest.importorskip("ray")
    dirs = {name: tmp_path / name for name in ("local", "ray")}
    local = recsim_train(*SWEEP, "hydra/launcher=batched", f"hydra.sweep.dir={dirs['local']}")
    assert local.returncode == 0, local.stdout + local.stderr
    result = recsim_train(
        *SWEEP,
        "hydra/launcher=batched_ray",
        "+hydra.launcher.ray.init.num_cpus=2",
        "+hydra.launcher.ray.init.include_dashboard=false",
        f"+hydra.launcher.ray.init._temp_dir={tempfile.mkdtemp(prefix='ray', dir='/tmp')}",
        f"hydra.sweep.dir={dirs['ray']}",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 population(s) of 2 job(s), 2 ordinary job(s)" in output and "(ray)" in output
    assert_same_runs(dirs["ray"], dirs["local"])


def test_ray_token_auth_applies_to_the_batched_launcher_on_ray_only():
    """experiments.integrations.ray_auth sets token mode for a Ray launcher's client when the user
    has a token: batched_ray is one, the local batched launcher is not."""
    from omegaconf import OmegaConf

    from experiments.integrations.ray_auth import is_ray_launcher

    for preset, expected in (("batched_ray", True), ("batched", False), ("batched_slurm", False)):
        launcher = launcher_config(f"hydra/launcher={preset}")
        assert is_ray_launcher(OmegaConf.create({"hydra": {"launcher": launcher}})) is expected
