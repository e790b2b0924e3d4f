"""A rendezvous of K member threads: every live member submits a request, one computation serves all.

Each member runs its ordinary single-run code in its own thread and blocks in :meth:`Rendezvous.submit`
until every live member has submitted (or left): then the last one to arrive executes the whole
round, grouped by the requests' keys (a group's requests run as one batched computation), hands
each member its result and wakes them. A member that finishes or fails :meth:`leaves
<Rendezvous.leave>`; a member still being built counts as live (it will submit or leave), so the
first round waits until every member is built.

Deadlock-free as long as a member never waits for another outside the rendezvous: between two
submissions a member only runs its own Python (its env, its protocol parts, its files).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

Executor = Callable[[Sequence[int], Sequence[Any]], Sequence[Any]]


@dataclass
class Request:
    """One member's request: ``run(slots, payloads)`` computes the results of every request that
    shares its ``key`` (the key says the computation and its shapes)."""

    key: Hashable
    run: Executor
    payload: Any
    result: Any = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class Rendezvous:
    """The members' meeting point (see the module doc). ``before_round`` runs once before the first
    round, with every member built (the population stacks its members there)."""

    before_round: Callable[[], None] | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _live: set[int] = field(default_factory=set)
    _waiting: dict[int, Request] = field(default_factory=dict)
    _next_slot: int = 0
    _started: bool = False
    rounds: int = 0

    def join(self) -> int:
        """A new live member's slot (call before its thread starts)."""
        with self._cond:
            slot = self._next_slot
            self._next_slot += 1
            self._live.add(slot)
            return slot

    def leave(self, slot: int) -> None:
        """``slot`` submits nothing more (finished or failed): the others no longer wait for it."""
        with self._cond:
            self._live.discard(slot)
            self._waiting.pop(slot, None)
            self._maybe_run()

    def submit(self, slot: int, request: Request) -> Any:
        """Block until the round that holds ``request`` ran; its result (or its error, raised)."""
        with self._cond:
            if slot not in self._live:
                raise RuntimeError(f"member {slot} submitted after leaving the population")
            self._waiting[slot] = request
            self._maybe_run()
            while not request.done:
                self._cond.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def _maybe_run(self) -> None:
        """With the lock held: run the round if every live member is waiting."""
        if not self._waiting or len(self._waiting) < len(self._live):
            return
        waiting, self._waiting = self._waiting, {}
        try:
            if not self._started:
                self._started = True
                if self.before_round is not None:
                    self.before_round()
            groups: dict[Hashable, list[int]] = {}
            for slot in sorted(waiting):
                groups.setdefault(waiting[slot].key, []).append(slot)
            for slots in groups.values():
                requests = [waiting[s] for s in slots]
                try:
                    results = requests[0].run(slots, [r.payload for r in requests])
                except BaseException as exc:  # the group's members fail, the others go on
                    for request in requests:
                        request.error = exc
                else:
                    for request, result in zip(requests, results, strict=True):
                        request.result = result
            self.rounds += 1
        except BaseException as exc:  # before_round failed: every waiting member fails
            for request in waiting.values():
                if request.error is None and request.result is None:
                    request.error = exc
        finally:
            for request in waiting.values():
                request.done = True
            self._cond.notify_all()
