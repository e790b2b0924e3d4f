"""Population training of our DQN and PQN: K agents whose torch work is one batched computation.

Each member is an ordinary :class:`~agents.dqn.DQNAgent` or :class:`~agents.pqn.PQNAgent` (built,
restored, checkpointed and driven by ``OnlineAgent.learn`` exactly as in a separate run, in its own
thread). :meth:`Population.attach` routes the member's torch work to the population's
:class:`~agents.population.batcher.Rendezvous`:

* every forward pass that acts, evaluates or values states (``_score_all``);
* DQN's gradient step (loss, backward, per-member gradient clipping, Adam with the member's own
  learning rate) and its target-network update (the member's own ``tau``);
* PQN's gradient step.

Before the first round the members' parameters and Adam moments are copied into stacked
``(K, ...)`` tensors and each member's own parameters and optimiser state become views of its row:
what the member reads (``state_dict``, evaluation, checkpoints) is always its current state, and
its checkpoint file is written from compact copies, as a separate run writes it. Everything else
(the env, replay sampling, ε-greedy draws, schedules, counters) stays in the member, on its own
generators, so a member's trajectory equals the separate run with its config and seed up to the
reassociation of floating-point sums inside the batched kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from agents.dqn.dqn import DQNAgent
from agents.population.stacked import adam_step
from agents.pqn.pqn import PQNAgent
from agents.qlearning.learner import QLearner

Member = DQNAgent | PQNAgent


def structure(agent: QLearner) -> tuple[Any, ...]:
    """What must be equal for two agents to be stacked: class, parameter shapes, the computation
    of a gradient step (double Q, loss, slate size, compact rollouts), the device."""
    cfg = agent.config
    shapes = tuple((name, tuple(p.shape)) for name, p in agent.q_net.state_dict().items())
    extra: tuple[Any, ...] = ()
    if isinstance(agent, DQNAgent):
        extra = (cfg.double, cfg.batch_size)
    elif isinstance(agent, PQNAgent):
        extra = (agent.rollout.compact,)
    return (type(agent), shapes, cfg.loss, agent.slate_size, str(agent.device), *extra)


class ParamStack:
    """One network's parameters of every member, stacked ``(K, ...)``; each member's own
    parameters become views of its row."""

    def __init__(self, modules: Sequence[torch.nn.Module]) -> None:
        names = [name for name, _ in modules[0].named_parameters()]
        self.names = names
        self.params = {
            name: torch.stack([dict(m.named_parameters())[name].detach() for m in modules])
            for name in names
        }
        for row, module in enumerate(modules):  # each member's parameters: views of its row
            for name, param in module.named_parameters():
                param.data = self.params[name][row]

    def take(self, rows: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The stacked parameters of ``rows`` (``None``: all members, no copy)."""
        if rows is None:
            return self.params
        return {name: p.index_select(0, rows) for name, p in self.params.items()}

    def put(self, rows: torch.Tensor | None, values: dict[str, torch.Tensor]) -> None:
        if rows is not None:
            for name, p in self.params.items():
                p.index_copy_(0, rows, values[name])


class StackedAdam:
    """The members' Adam moments and step counts, stacked; a member's optimiser state holds views
    of its row from its first gradient step on (before it, its state is empty, as in a separate
    run)."""

    def __init__(self, members: Sequence[Member], stack: ParamStack) -> None:
        self.members = members
        self.stack = stack
        self.exp_avg = {n: torch.zeros_like(p) for n, p in stack.params.items()}
        self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in stack.params.items()}
        self.steps = torch.zeros(len(members), dtype=torch.float32, device=_device(stack))
        self.attached = [False] * len(members)
        for row, agent in enumerate(members):
            group = agent.optimizer.param_groups[0]
            if group["amsgrad"] or group["weight_decay"] or group["maximize"]:
                raise ValueError("population training needs plain Adam (no amsgrad / decay)")
            if agent.optimizer.state:
                state = agent.optimizer.state
                for name, param in agent.q_net.named_parameters():
                    self.exp_avg[name][row] = state[param]["exp_avg"]
                    self.exp_avg_sq[name][row] = state[param]["exp_avg_sq"]
                    self.steps[row] = state[param]["step"]
                self._attach(row)

    def _attach(self, row: int) -> None:
        agent = self.members[row]
        step = self.steps[row]
        for name, param in agent.q_net.named_parameters():
            agent.optimizer.state[param] = {
                "step": step,
                "exp_avg": self.exp_avg[name][row],
                "exp_avg_sq": self.exp_avg_sq[name][row],
            }
        self.attached[row] = True

    def step(self, rows: Sequence[int], index: torch.Tensor | None, grads: dict[str, Any]) -> None:
        """One Adam step of ``rows`` (``index``: the same rows as a tensor, ``None``: all)."""
        params = self.stack.take(index)
        m = _take(self.exp_avg, index)
        v = _take(self.exp_avg_sq, index)
        steps = self.steps if index is None else self.steps.index_select(0, index)
        groups = [self.members[r].optimizer.param_groups[0] for r in rows]
        lr = torch.tensor([g["lr"] for g in groups], dtype=torch.float32, device=steps.device)
        names = self.stack.names
        adam_step(
            [params[n] for n in names], [grads[n] for n in names], [m[n] for n in names],
            [v[n] for n in names], steps, lr, groups[0]["betas"], groups[0]["eps"],
        )  # fmt: skip
        if index is not None:
            self.stack.put(index, params)
            _put(self.exp_avg, index, m)
            _put(self.exp_avg_sq, index, v)
            self.steps.index_copy_(0, index, steps)
        for row in rows:
            if not self.attached[row]:
                self._attach(row)


def _device(stack: ParamStack) -> torch.device:
    return next(iter(stack.params.values())).device


def _take(tensors: dict[str, torch.Tensor], index: torch.Tensor | None) -> dict[str, torch.Tensor]:
    return tensors if index is None else {n: t.index_select(0, index) for n, t in tensors.items()}


def _put(tensors: dict[str, torch.Tensor], index: torch.Tensor, values: dict[str, Any]) -> None:
    for name, t in tensors.items():
        t.index_copy_(0, index, values[name])


def compact(tree: Any) -> Any:
    """Tensors that are views into a stack → compact copies (``torch.save`` writes a view's whole
    storage); everything else as it is."""
    if isinstance(tree, torch.Tensor):
        if tree.untyped_storage().nbytes() > tree.nbytes:
            return tree.clone()
        return tree
    if isinstance(tree, dict):
        return {k: compact(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [compact(v) for v in tree]
    return tree
