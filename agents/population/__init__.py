"""STAND-IN (drop at merge): the population helper's grouping rule lands here.

Which jobs of a sweep may train together as one population: our DQN or PQN with the same network
and gradient-step structure and the same env config; they may differ in the seed and the
continuous hyperparameters. Same signature as the real ``population_key(agent, env)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["population_key"]

AGENT_CLASSES = {"agents.dqn.DQNAgent": "DQNAgent", "agents.pqn.PQNAgent": "PQNAgent"}
STRUCTURAL = ("network", "hidden_sizes", "dueling", "double", "loss", "batch_size", "layer_norm",
              "rollout_steps", "num_epochs", "num_minibatches", "minibatch_size", "device",
              "torch_threads")  # fmt: skip


def population_key(agent: Mapping[str, Any], env: Mapping[str, Any]) -> str | None:
    """Equal for configurations that can share a population; ``None``: an ordinary job."""
    cls = AGENT_CLASSES.get(str(agent.get("_target_")))
    if cls is None or agent.get("cuda_graphs"):
        return None
    key = {"agent": cls, **{k: agent.get(k) for k in STRUCTURAL}, "env": dict(env)}
    return json.dumps(key, sort_keys=True, default=str)
