"""What identifies a job on Hydra's command line: its overrides and its config-group choices.

Why here and not in the run dir: the runner, ``recsim-tune`` and ``recsim-compare`` all match jobs
by these (a sweep's expected jobs against the run dirs found, a resumed job against its record).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PRESET_GROUP", "clean_choices", "compose_config", "override_key", "same_job"]

#: The config group of the per-(agent, env) tuned presets, ``conf/agent/tuned/<agent>/<env>.yaml``,
#: chosen by ``conf/config.yaml`` as ``${agent}/${env}``; a run's ``run.json`` keeps this choice only
#: where such a preset exists (and was applied), and ``recsim-compare`` reports it.
PRESET_GROUP = "agent/tuned"


def clean_choices(choices: Mapping[Any, Any]) -> dict[str, str]:
    """Hydra's group choices without its own ``hydra/*`` groups and unset (``null``) groups."""
    return {
        str(k): str(v)
        for k, v in choices.items()
        if v is not None and not str(k).startswith("hydra")
    }


def compose_config(
    overrides: Sequence[str], job_name: str = "compose"
) -> tuple[Any, dict[str, str]]:
    """``conf/config.yaml`` composed with ``overrides`` (Hydra's compose API, as ``recsim-train``
    composes a job): (the config without its ``hydra`` node, the group choices)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from experiments.run.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name=job_name):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    choices = clean_choices(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def override_key(override: str) -> str:
    """``+agent.lr=1`` → ``agent.lr``."""
    return override.split("=", 1)[0].lstrip("+~")


def same_job(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether two override lists describe the same job (``resume`` and ``hydra.*`` ignored)."""

    def identity(overrides: Sequence[str]) -> list[str]:
        return sorted(
            o
            for o in overrides
            if override_key(o) != "resume" and not override_key(o).startswith("hydra")
        )

    return identity(a) == identity(b)
