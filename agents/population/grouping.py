"""Which configurations can train as one population.

Members of a population share what fixes the shapes and the computation of their torch work: the
agent class (our DQN or PQN), the network (kind, hidden sizes, dueling head, LayerNorm), the
gradient step's structure (Double DQN, the TD loss, DQN's minibatch size; PQN's rollout length,
epochs and minibatches) and the device and threads; and the whole env config (id, ``num_envs``
and every kwarg: the observation layout and the action space follow from it). They may differ in
everything else: the seed and the continuous hyperparameters (γ, lr and its schedule, ε schedule,
τ and the target interval, λ, gradient clipping, n-step, replay size, learning starts, ...).

Works on plain dicts (the resolved ``agent`` and ``env`` config sections), so the runner and the
Hydra launcher group jobs before building anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

# _target_ spellings of the classes a population can train, and the class each one names
AGENT_CLASSES = {
    "agents.dqn.DQNAgent": "DQNAgent",
    "agents.dqn.dqn.DQNAgent": "DQNAgent",
    "agents.pqn.PQNAgent": "PQNAgent",
    "agents.pqn.pqn.PQNAgent": "PQNAgent",
}
# hyperparameters that fix the stacked shapes or the batched computation (see the module doc)
STRUCTURAL = {
    "DQNAgent": ("network", "hidden_sizes", "dueling", "double", "loss", "batch_size", "device",
                 "torch_threads"),
    "PQNAgent": ("network", "hidden_sizes", "layer_norm", "loss", "rollout_steps", "num_epochs",
                 "num_minibatches", "minibatch_size", "device", "torch_threads"),
}  # fmt: skip


def population_key(agent: Mapping[str, Any], env: Mapping[str, Any]) -> str | None:
    """A key equal for configurations that can share a population; ``None`` for one that cannot
    join any (another agent, a CUDA-graph DQN)."""
    cls = AGENT_CLASSES.get(str(agent.get("_target_")))
    if cls is None or agent.get("cuda_graphs"):
        return None
    key = {
        "agent": cls,
        **{name: agent.get(name) for name in STRUCTURAL[cls]},
        "env": dict(env),
    }
    return json.dumps(key, sort_keys=True, default=str)


def group_configs(
    configs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
) -> list[list[int]]:
    """Indices of ``(agent, env)`` configurations grouped into populations, in first-seen order;
    one that cannot join a population is a group of its own."""
    groups: dict[str, list[int]] = {}
    alone: list[list[int]] = []
    order: list[list[int]] = []
    for i, (agent, env) in enumerate(configs):
        key = population_key(agent, env)
        if key is None:
            alone.append([i])
            order.append(alone[-1])
        elif key in groups:
            groups[key].append(i)
        else:
            groups[key] = [i]
            order.append(groups[key])
    return order
