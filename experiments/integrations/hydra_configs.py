"""The Python configs as Hydra sees them: ConfigStore nodes ``schema/agent/NAME`` and
``schema/env/recsim``, which the YAML under ``conf/agent/`` and ``conf/env/`` extends with presets
and overrides through its ``defaults:`` list.

Why ConfigStore nodes made from the Python defaults (and not hydra-zen, nor dataclass-typed
nodes): each default stays defined once, in the agent's own config (``agents/catalog.py`` says
where), with the one validator that names key, value and range (``ConfigError``); an untyped node
lets a YAML option extend another (``adaptive_dqn`` adds its keys to ``dqn``'s, ``frozen`` nests
an agent), and adds no dependency. :func:`register_configs` runs before Hydra composes anything:
the ``hydra_plugins.recsim_env_configs`` search-path plugin calls it (Hydra imports its plugins
at start-up, in ``recsim-train``, ``recsim-tune`` and the compose API alike).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from agents.catalog import AGENTS, agent_defaults
from recsim_env import SimConfig

# users served in parallel: one vector step = NUM_ENVS user-steps (the runner's default)
NUM_ENVS = 16
ENV_SCHEMA = "recsim"


def env_schema() -> dict[str, Any]:
    """``id`` (set by each preset), ``num_envs``, ``autoreset_mode`` of the training env
    (``same_step``, or ``next_step``: Gymnasium's convention) and every simulator parameter as a
    kwarg: ``null`` means the simulator's default (the registered id's preset)."""
    kwargs = {f.name: None for f in dataclasses.fields(SimConfig)}
    return {"id": MISSING, "num_envs": NUM_ENVS, "autoreset_mode": "same_step", "kwargs": kwargs}


def agent_schema(name: str) -> dict[str, Any]:
    """``_target_`` and the option's own defaults (those of the option it extends come through
    its YAML's ``defaults:``). Where the agent's dependencies are not installed (``pip install
    recsim-env[experiments]`` without ``[agents]``) only ``_target_``: composing still works, and
    building the agent raises the ImportError that says what is missing."""
    option = AGENTS[name]
    try:
        defaults = agent_defaults(name, inherited=False)
    except ImportError:
        defaults = {}
    return {"_target_": option.target, **defaults}


def register_configs() -> None:
    """Store the schema nodes (idempotent: storing again replaces them)."""
    store = ConfigStore.instance()
    for name in AGENTS:
        store.store(group="schema/agent", name=name, node=agent_schema(name), provider="recsim-env")
    store.store(group="schema/env", name=ENV_SCHEMA, node=env_schema(), provider="recsim-env")
