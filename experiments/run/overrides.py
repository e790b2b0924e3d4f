"""What identifies a job on Hydra's command line: its overrides and its config-group choices.

Why here and not in the run dir: the runner, ``recsim-tune`` and ``recsim-compare`` all match jobs
by these (a sweep's expected jobs against the run dirs found, a resumed job against its record).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PRESET_GROUP", "clean_choices", "override_key", "same_job"]

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
