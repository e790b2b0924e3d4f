"""A run dir is data: resuming one never lets its files choose what code runs.

Why: run dirs are shared (copied between machines, attached to bug reports, downloaded from a
colleague's sweep). Resuming one rebuilds the agent, the sinks and the protocol's parts from the
run's ``config.yaml`` with ``hydra.utils.instantiate``, which imports and calls whatever dotted path
a ``_target_`` names: ``agent.seed: {_target_: pathlib.Path.write_text, ...}`` would write a file
of the author's choosing. So on resume every ``_target_`` in the saved config (anywhere in it) must
be in an allow-list *before* anything is imported or instantiated:

* the project's own classes: every ``_target_`` of the YAML files in ``conf/`` (logger sinks,
  protocol parts, Hydra callbacks and launchers) and of the agent options in
  :data:`agents.catalog.AGENTS` (their ``_target_`` lives in the Python schema, not the YAML),
  computed from this checkout (:func:`project_targets`), never from the run dir;
* the classes the user names for this command: every ``_target_`` of the config composed from the
  command line and the user's own config files (``agent._target_=my_pkg.MyAgent``,
  ``hydra.searchpath``, ``conf/local/default.yaml``).

Anything else is refused with a :class:`UntrustedTarget` naming the key, the target and how to
allow it. Interpolations in a saved config (written resolved, so it holds none) are refused too:
``${oc.env:...}`` would copy an environment variable into the run's files.

Checkpoints are pickle-free (:mod:`recsim_env.state_io`, ``torch.load(weights_only=True)``);
SB3's zips are cloudpickle by SB3's design and load only with ``trust_checkpoints=true`` given on
*this* command line (a saved ``trust_checkpoints`` is ignored).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.run.rundir import RunDirError

__all__ = [
    "UntrustedTarget",
    "check_saved_config",
    "project_targets",
    "targets_in",
]

_TARGET_LINE = re.compile(r"^\s*_target_\s*:\s*['\"]?([A-Za-z_][\w.]*)['\"]?\s*(#.*)?$")


class UntrustedTarget(RunDirError):
    """A run dir's saved config names code that neither the project nor the user chose."""


@functools.lru_cache(maxsize=4)
def _targets_of_conf(conf_dir: str) -> frozenset[str]:
    found: set[str] = set()
    for path in Path(conf_dir).rglob("*.yaml"):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for line in text.splitlines():
            match = _TARGET_LINE.match(line)
            if match:
                found.add(match.group(1))
    return frozenset(found)


def project_targets(conf_dir: str | Path | None = None) -> frozenset[str]:
    """Every ``_target_`` named in this checkout's ``conf/`` and every registered agent option's
    class (the project's registered classes)."""
    from agents.catalog import AGENTS

    if conf_dir is None:
        from experiments.run.config import CONF_DIR

        conf_dir = CONF_DIR
    agents = {option.target for option in AGENTS.values()}
    return _targets_of_conf(str(Path(conf_dir).resolve())) | agents


def _leaves(cfg: Any) -> Iterator[tuple[str, Any]]:
    """``(dotted key, raw value)`` of every leaf, interpolations unresolved."""
    plain = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg

    def walk(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.")
        elif isinstance(node, list | tuple):
            for i, value in enumerate(node):
                yield from walk(value, f"{prefix}{i}.")
        else:
            yield prefix.rstrip("."), node

    yield from walk(plain, "")


def targets_in(cfg: Any) -> set[str]:
    """The ``_target_`` values anywhere in ``cfg`` (resolved where that is possible)."""
    found: set[str] = set()
    if cfg is None:
        return found
    try:
        plain = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    except Exception:  # an unresolvable interpolation elsewhere: read the raw values
        plain = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "_target_" and isinstance(value, str):
                    found.add(value)
                walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)

    walk(plain)
    return found


def check_saved_config(
    saved: DictConfig, chosen: DictConfig | None, run_dir: Any, extra: Iterable[str] = ()
) -> None:
    """Refuse a saved config that names code the project and the user did not choose.

    ``chosen`` is the config composed from this command line (and the user's own config files):
    its ``_target_``s are allowed along with :func:`project_targets` and ``extra``. Raises
    :class:`UntrustedTarget` before anything is imported.
    """
    allowed = set(project_targets()) | targets_in(chosen) | set(extra)
    for key, value in _leaves(saved):
        if isinstance(value, str) and "${" in value:
            raise UntrustedTarget(
                f"cannot resume {run_dir}: its config.yaml sets {key}={value!r}, an "
                "interpolation; a run's saved config is written resolved, so this one was "
                "edited. Remove the interpolation from config.yaml (or start a fresh run)"
            )
        leaf = key.rsplit(".", 1)[-1]
        if leaf != "_target_":
            continue
        if not isinstance(value, str) or value not in allowed:
            owner = key.rsplit(".", 1)[0] if "." in key else "<root>"
            raise UntrustedTarget(
                f"cannot resume {run_dir}: its config.yaml sets {key}={value!r}, which is not one "
                "of the project's classes (the _target_s of conf/) nor one named on this command "
                "line, so it is not loaded: a run dir is data and never chooses what code runs. "
                f"If you trust {value!r}, name it yourself: recsim-train resume={run_dir} "
                f"'{key}={value}' (or in your own config); otherwise fix {owner} in "
                "config.yaml"
            )
