"""Parallelised Q-learning (PQN): ``PQNAgent`` (pqn.py), its config and the Q(λ) targets.

Names are imported on first access, so that ``agents.pqn.config`` can be read without torch.
"""

from typing import Any

_LAZY = {
    "PQNAgent": "agents.pqn.pqn",
    "PQNConfig": "agents.pqn.config",
    "q_lambda_targets": "agents.pqn.qlambda",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agents.pqn' has no attribute {name!r}")
