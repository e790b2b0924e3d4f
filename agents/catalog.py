"""The agent options of ``recsim-train`` (``agent=NAME``) and where each one's defaults are defined.

Each default is defined once, in Python: a config dataclass (``DQNConfig``, ``PQNConfig``,
``AdaptiveConfig``), a hyperparameter table (the SB3 adapters' ``Param`` tables) or the keyword
defaults of the class's ``__init__`` (the baselines). :func:`agent_defaults` reads them without
building an agent, and without importing torch or SB3 for the DQN, PQN and SB3 options; Hydra
sees them as ConfigStore nodes (``experiments/integrations/hydra_configs.py``) that the YAML under
``conf/agent/`` extends with presets only.

Adding an option: an entry here (the class and where its defaults live) and a three-line
``conf/agent/NAME.yaml`` whose ``defaults:`` list names ``/schema/agent@_here_: NAME``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AgentOption:
    """``target``: the class Hydra instantiates; ``defaults``: ``module:attribute`` of what holds
    its defaults (a dataclass, a mapping of ``Param``, or a class whose ``__init__`` keyword
    defaults are them); ``extends``: the option whose keys this one adds to (its YAML inherits
    that option's, e.g. ``adaptive_dqn`` extends ``dqn``)."""

    target: str
    defaults: str
    extends: str | None = None


_SB3 = "agents.sb3.hparams"
AGENTS: dict[str, AgentOption] = {
    "dqn": AgentOption("agents.dqn.DQNAgent", "agents.dqn.config:DQNConfig"),
    "adaptive_dqn": AgentOption(
        "agents.dqn.adaptive.AdaptiveDQNAgent", "agents.dqn.adaptive:AdaptiveConfig", "dqn"
    ),
    "dqn_pretrained": AgentOption(
        "agents.offline.pretrained_agent.PretrainedDQN",
        "agents.offline.pretrained_agent:PretrainedDQN",
        "dqn",
    ),
    "pqn": AgentOption("agents.pqn.PQNAgent", "agents.pqn.config:PQNConfig"),
    "sb3_dqn": AgentOption("agents.sb3.SB3DQN", f"{_SB3}:SB3DQN_PARAMS"),
    "sb3_qrdqn": AgentOption("agents.sb3.SB3QRDQN", f"{_SB3}:SB3QRDQN_PARAMS"),
    "sb3_ppo": AgentOption("agents.sb3.SB3PPO", f"{_SB3}:SB3PPO_PARAMS"),
    "sb3_a2c": AgentOption("agents.sb3.SB3A2C", f"{_SB3}:SB3A2C_PARAMS"),
    **{
        name: AgentOption(f"agents.baselines.{cls}", f"agents.baselines:{cls}")
        for name, cls in {
            "random": "RandomAgent",
            "popularity": "PopularityAgent",
            "greedy": "GreedyAgent",
            "epsilon_greedy": "EpsilonGreedyAgent",
            "linucb": "LinUCB",
            "thompson": "LinearThompson",
            "swucb": "SlidingWindowUCB",
            "ducb": "DiscountedUCB",
            "oracle": "OracleAgent",
            "oracle_longterm": "OracleLongTermAgent",
            "longterm_rule": "LongTermRuleAgent",
            "frozen": "FrozenAgent",
        }.items()
    },
}


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _signature_defaults(cls: type) -> dict[str, Any]:
    """Keyword defaults of ``cls.__init__`` (parameters without a default, such as ``env``, and
    ``**kwargs`` are left out)."""
    params = inspect.signature(cls).parameters.values()
    return {
        p.name: p.default
        for p in params
        if p.default is not inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def defaults_of(source: Any) -> dict[str, Any]:
    """The defaults a dataclass, a ``Param`` table or a class's ``__init__`` defines, in order."""
    if dataclasses.is_dataclass(source) and isinstance(source, type):
        out = {}
        for f in dataclasses.fields(source):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        return out
    if isinstance(source, Mapping):
        return {key: _copy(param.default) for key, param in source.items()}
    if isinstance(source, type):
        return _signature_defaults(source)
    raise TypeError(f"cannot read defaults from {source!r}")


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def agent_defaults(name: str, *, inherited: bool = True) -> dict[str, Any]:
    """Every hyperparameter of option ``name`` with its default (``inherited=False``: only the
    keys it adds to the option it extends)."""
    option = AGENTS[name]
    own = defaults_of(_resolve(option.defaults))
    if not inherited or option.extends is None:
        return own
    return {**agent_defaults(option.extends), **own}
