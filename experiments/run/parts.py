"""The protocol's parts, built from the config (``protocol.parts``) with ``hydra.utils.instantiate``.

Why from the config: a researcher who wants one more metric or an early-stopping rule adds a part
from a config file of their own (``hydra.searchpath``) instead of forking the runner, as
lightning-hydra-template builds its callbacks. ``conf/protocol/parts/default.yaml`` is the one
source of the default set; a run whose config has no ``protocol.parts`` (saved before parts were
configurable) gets that set. The part protocol is :class:`~experiments.run.steps.ProtocolCallback`'s.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.run.config import CONF_DIR, ProtocolConfig, instantiate_checked
from experiments.run.steps import PeriodicCheckpoint, ProtocolCallback
from recsim_env.validation import ConfigError

__all__ = ["DEFAULT_PARTS", "build_parts", "default_parts"]

DEFAULT_PARTS = Path(CONF_DIR) / "protocol" / "parts" / "default.yaml"


def _context_names(target: str) -> set[str]:
    """The runtime objects (``settings``, ``make_eval_env``) that ``target``'s constructor takes."""
    module_name, _, attr = target.rpartition(".")
    try:
        params = inspect.signature(getattr(importlib.import_module(module_name), attr)).parameters
    except Exception:  # instantiate_checked names the problem
        return set()
    return {"settings", "make_eval_env"} & set(params)


def build_parts(
    specs: Mapping[str, Any] | DictConfig | None,
    settings: ProtocolConfig,
    make_eval_env: Callable[[], Any] | None,
) -> list[ProtocolCallback]:
    """One part per entry of ``specs`` (name → ``{_target_, params}``; ``null`` switches it off),
    in order; ``None``: the default set. Raises ``ConfigError`` naming ``protocol.parts.NAME``."""
    if specs is None:
        return default_parts(settings, make_eval_env)
    node = specs if isinstance(specs, DictConfig) else OmegaConf.create(dict(specs))
    context = {"settings": settings, "make_eval_env": make_eval_env}
    parts: list[ProtocolCallback] = []
    for name, spec in node.items():
        key = f"protocol.parts.{name!s}"
        if spec is None:
            continue
        if name == PeriodicCheckpoint.key:
            raise ConfigError(
                f"invalid {key} (allowed: any name but {name!r}, the checkpoint part's, which "
                "always runs last and is not listed)"
            )
        if not isinstance(spec, DictConfig) or "_target_" not in spec:
            raise ConfigError(f"invalid {key}={spec!r} (allowed: a part config with a '_target_')")
        wanted = _context_names(str(spec._target_))
        part = instantiate_checked(spec, key, **{k: v for k, v in context.items() if k in wanted})
        if not isinstance(part, ProtocolCallback):
            raise ConfigError(
                f"invalid {key}._target_={spec._target_} (allowed: a subclass of "
                "experiments.run.steps.ProtocolCallback)"
            )
        part.key = str(name)  # its state's name in checkpoints
        parts.append(part)
    return parts


def default_parts(
    settings: ProtocolConfig, make_eval_env: Callable[[], Any] | None
) -> list[ProtocolCallback]:
    """The parts of ``conf/protocol/parts/default.yaml``."""
    node = OmegaConf.load(DEFAULT_PARTS)
    assert isinstance(node, DictConfig)
    return build_parts(node, settings, make_eval_env)
