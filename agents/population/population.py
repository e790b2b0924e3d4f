"""The population: members attach, their torch work meets in one rendezvous (see ``members``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import torch

from agents.dqn.dqn import DQNAgent
from agents.population.batcher import Rendezvous, Request
from agents.population.members import ParamStack, StackedAdam, compact, structure
from agents.population.stacked import StackedNetwork, clip_grad_norm, td_loss
from agents.pqn.pqn import PQNAgent
from agents.qlearning.acting import CPU_CHUNK_ROWS, greedy_actions
from recsim_env.validation import ConfigError

Member = DQNAgent | PQNAgent


class PopulationError(ConfigError):
    """A member that cannot join this population (another class or shape than its first member)."""


class Population:
    """K DQN or PQN members trained together (see :mod:`agents.population.members`).

    ``threads``: torch's intra-op threads for the population's batched kernels, set once every
    member is built (``None``: as the members set it, ``torch_threads``; the process is one
    population, so on a machine of its own it may use every core).

    Usage: ``slot = population.join()`` for every member before any starts; in the member's
    thread, ``agent = population.attach(slot, agent)`` once the agent is built (or restored), then
    train it as usual; ``population.leave(slot)`` when the member's run ends (also on failure).
    """

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads  # torch's intra-op threads once every member is built (None: keep)
        self.rendezvous = Rendezvous(before_round=self._stack)
        self._lock = threading.Lock()
        self._members: dict[int, Member] = {}
        self._structure: tuple[Any, ...] | None = None
        self._rows: dict[int, int] = {}  # slot -> row in the stacks
        self._net: StackedNetwork | None = None
        self._online: ParamStack | None = None
        self._target: ParamStack | None = None
        self._adam: StackedAdam | None = None

    # ------------------------------------------------------------------ membership
    def join(self) -> int:
        return self.rendezvous.join()

    def leave(self, slot: int) -> None:
        self.rendezvous.leave(slot)

    def attach(self, slot: int, agent: Any) -> Any:
        """Route ``agent``'s torch work to the population; returns the agent itself."""
        if type(agent) not in (DQNAgent, PQNAgent):  # not a subclass: the adaptive DQN is not
            raise PopulationError(
                f"population training takes DQNAgent or PQNAgent members, not {type(agent).__name__}"
            )
        if isinstance(agent, DQNAgent) and agent.config.cuda_graphs:
            raise PopulationError("population training does not take cuda_graphs=True members")
        shape = structure(agent)
        with self._lock:
            if self._online is not None:
                raise PopulationError("the population is already training: join before it starts")
            if self._structure is None:
                self._structure = shape
            elif shape != self._structure:
                raise PopulationError(
                    "this member's network / loss / env structure differs from the population's "
                    f"first member: {shape} vs {self._structure}"
                )
            self._members[slot] = agent
        # instance attributes shadow the methods: the member's own code calls these
        routes: dict[str, Any] = {
            "_score_all": lambda obs: self._submit(slot, "score", (agent, obs)),
            "state_dict": _compact_state(agent.state_dict),
        }
        if isinstance(agent, DQNAgent):
            routes["_step"] = lambda *batch: self._submit(slot, "dqn_step", (agent, batch))
            routes["_update_target"] = lambda: self._submit(slot, "target", agent.config.tau)
        else:
            routes["_gradient_step"] = lambda *b: self._submit(slot, "pqn_step", (agent, b))
        for name, route in routes.items():
            setattr(agent, name, route)
        return agent

    def _stack(self) -> None:
        """Before the first round: stack every attached member (rows in slot order)."""
        if self.threads is not None:  # after the members' own setting (seed_everything)
            torch.set_num_threads(self.threads)
        slots = sorted(self._members)
        members = [self._members[s] for s in slots]
        self._rows = {slot: row for row, slot in enumerate(slots)}
        self._net = StackedNetwork(members[0].q_net)
        self._online = ParamStack([m.q_net for m in members])
        if isinstance(members[0], DQNAgent):
            self._target = ParamStack([m.target_net for m in members])  # type: ignore[union-attr]
        self._adam = StackedAdam(members, self._online)

    # ------------------------------------------------------------------ requests
    def _submit(self, slot: int, op: str, payload: Any) -> Any:
        key: tuple[Any, ...] = (op,)
        if op == "score":
            key = (op, tuple(payload[1].shape))
        elif op in ("dqn_step", "pqn_step"):
            key = (op, *(tuple(x.shape) for x in payload[1]))
        run = getattr(self, f"_run_{op}")
        return self.rendezvous.submit(slot, Request(key, run, payload))

    def _index(self, slots: Sequence[int]) -> tuple[list[int], torch.Tensor | None]:
        """Rows of ``slots`` and their index tensor (``None`` when they are all the members)."""
        rows = [self._rows[s] for s in slots]
        if rows == list(range(len(self._rows))):
            return rows, None
        assert self._online is not None
        device = next(iter(self._online.params.values())).device
        return rows, torch.tensor(rows, dtype=torch.long, device=device)

    @torch.no_grad()
    def _run_score(self, slots: Sequence[int], payloads: Sequence[Any]) -> list[torch.Tensor]:
        """Q-values of every member's observations, ``(B, C)`` each."""
        assert self._net is not None and self._online is not None
        _, index = self._index(slots)
        params = self._online.take(index)
        obs = torch.stack([p[1] for p in payloads])
        # chunks of users as a separate run's (score_all): what a member computes must not
        # depend on how many members share the call
        users = max(1, CPU_CHUNK_ROWS // max(payloads[0][0]._rows_per_user, 1))
        if obs.device.type != "cpu" or obs.shape[1] <= users:
            q = self._net.forward(params, obs)
        else:
            q = torch.cat([self._net.forward(params, part) for part in obs.split(users, 1)], 1)
        return list(q.unbind(0))

    @torch.no_grad()
    def _run_target(self, slots: Sequence[int], taus: Sequence[float]) -> list[None]:
        """DQN target update: ``θ' ← lerp(θ', θ, τ)`` per member (``τ = 1``: an exact copy)."""
        assert self._online is not None and self._target is not None
        _, index = self._index(slots)
        online, target = self._online.take(index), self._target.take(index)
        device = next(iter(online.values())).device
        tau = torch.tensor(list(taus), dtype=torch.float32, device=device)
        for name, t in target.items():
            t.lerp_(online[name], tau.view(-1, *([1] * (t.dim() - 1))))
        if index is not None:
            self._target.put(index, target)
        return [None] * len(slots)

    def _gradient(
        self, slots: Sequence[int], agents: Sequence[Member], loss_of: Any
    ) -> torch.Tensor:
        """Backward of ``loss_of(params) -> (loss (K,), q_taken (K, b))``, per-member clipping,
        Adam; returns ``[loss, mean Q]`` per member ``(K, 2)``."""
        assert self._online is not None and self._adam is not None
        rows, index = self._index(slots)
        stacked = self._online.take(index)
        params = {name: p.detach().requires_grad_(True) for name, p in stacked.items()}
        loss, q_taken = loss_of(params)
        names = list(params)
        grad = torch.autograd.grad(loss.sum(), [params[n] for n in names])
        grads = dict(zip(names, grad, strict=True))
        inf = float("inf")
        max_norm = torch.tensor(
            [inf if a.config.max_grad_norm is None else a.config.max_grad_norm for a in agents],
            dtype=torch.float32,
            device=loss.device,
        )
        clip_grad_norm([grads[n] for n in names], max_norm)
        if index is not None:  # the subset's rows were copied: step the stack's own rows
            self._adam.step(rows, index, grads)
        else:
            self._adam.step(rows, None, grads)
        return torch.stack([loss.detach(), q_taken.detach().flatten(1).mean(dim=1)], dim=1)

    def _run_dqn_step(self, slots: Sequence[int], payloads: Sequence[Any]) -> list[torch.Tensor]:
        """DQN's ``_gradient_step`` for every member: TD target from the target network (Double
        DQN where configured), the member's loss, clipping, Adam."""
        assert self._net is not None and self._target is not None
        agents = [p[0] for p in payloads]
        obs, actions, returns, discounts, terminated, next_obs = (
            torch.stack(list(parts)) for parts in zip(*(p[1] for p in payloads), strict=True)
        )
        first = agents[0]
        net, slate = self._net, first.slate_size
        _, index = self._index(slots)
        target_params = self._target.take(index)

        def loss_of(params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            with torch.no_grad():
                if first.config.double:
                    q_next = net.forward(params, next_obs)
                    picked = greedy_actions(q_next.flatten(0, 1), slate)
                    picked = picked.view(*q_next.shape[:2], *picked.shape[1:])
                    next_value = net.q_of(target_params, next_obs, picked).mean(dim=2)
                else:
                    q_next = net.forward(target_params, next_obs)
                    if slate:
                        next_value = torch.topk(q_next, slate, dim=2).values.mean(dim=2)
                    else:
                        next_value = q_next.max(dim=2).values
            target = returns + discounts * (1.0 - terminated) * next_value
            q_taken = net.q_of(params, obs, actions).mean(dim=2)
            return td_loss(q_taken, target, first.config.loss), q_taken

        stats = self._gradient(slots, agents, loss_of)
        return list(stats.unbind(0))

    def _run_pqn_step(self, slots: Sequence[int], payloads: Sequence[Any]) -> list[torch.Tensor]:
        """PQN's ``_gradient_step`` for every member: regress ``Q(s, a)`` on its Q(λ) target."""
        assert self._net is not None
        agents = [p[0] for p in payloads]
        first_in, second_in, targets = (
            torch.stack(list(parts)) for parts in zip(*(p[1] for p in payloads), strict=True)
        )
        net, compact = self._net, agents[0].rollout.compact

        def loss_of(params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            if compact:
                q = net.score_chosen(params, first_in, second_in)
            else:
                q = net.q_of(params, first_in, second_in)
            q_taken = q.mean(dim=2)
            return td_loss(q_taken, targets, agents[0].config.loss), q_taken

        stats = self._gradient(slots, agents, loss_of)
        return list(stats.unbind(0))


def _compact_state(state_dict: Any) -> Any:
    """A member's ``state_dict`` with compact tensors (see :func:`members.compact`)."""

    def compact_state_dict(*args: Any, **kwargs: Any) -> Any:
        return compact(state_dict(*args, **kwargs))

    return compact_state_dict


def learn_together(
    agents: Sequence[Any],
    total_steps: int,
    callbacks: Sequence[Any] | None = None,
    threads: int | None = None,
) -> list[BaseException | None]:
    """``agent.learn(total_steps, callback)`` for every agent (built, each on its own env) as one
    population; per agent ``None`` or the exception its ``learn`` raised (it failed alone).
    The runner's path is :func:`experiments.run.population.run_population`; this one is for
    agents used as a library. ``threads``: see :class:`Population`."""
    population = Population(threads)
    slots = [population.join() for _ in agents]
    errors: list[BaseException | None] = [None] * len(agents)
    for slot, agent in zip(slots, agents, strict=True):
        population.attach(slot, agent)

    def learn(i: int) -> None:
        try:
            agents[i].learn(total_steps, callbacks[i] if callbacks is not None else None)
        except BaseException as exc:
            errors[i] = exc
        finally:
            population.leave(slots[i])

    workers = [threading.Thread(target=learn, args=(i,), daemon=True) for i in range(len(agents))]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return errors
