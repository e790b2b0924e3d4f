"""One training step captured as a CUDA graph and replayed (``DQNConfig.cuda_graphs``).

On a GPU the DQN's gradient step on a minibatch of 64 is a few hundred small kernels, each launched
from Python: the GPU waits on the CPU, and a GPU run is no faster than a CPU one. A CUDA graph
records the kernels of one step once and replays them with a single launch. Requirements, all met
by ``DQNAgent``: fixed input shapes (the round's minibatches are slices of equal size), no host
synchronisation inside the step (the loss and Q statistics stay on the device, gradient clipping
has no ``.item()``), and an optimiser whose state lives on the device (Adam with
``capturable=True``, its learning rate a device tensor updated in place).

The first ``warmup`` calls run eagerly on a side stream (they are real steps; CUDA needs them to
initialise lazily built state before a capture), the next one is captured and replayed, every
later one copies its inputs into the captured ones and replays. ``state_key`` identifies the
optimiser state the graph was captured with: when it changes (a checkpoint was loaded, Adam was
reset) the graph is captured again.

Untested here: the machine this was written on has no GPU. Off by default.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import torch


class GraphedStep:
    """``step(*inputs) -> Tensor`` through a CUDA graph; returns a copy of the step's output."""

    def __init__(
        self,
        step: Callable[..., torch.Tensor],
        state_key: Callable[[], Hashable],
        warmup: int = 3,
    ) -> None:
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA graphs need a CUDA device")
        self.step = step
        self.state_key = state_key
        self.warmup = warmup
        self.reset()

    def reset(self) -> None:
        """Forget the graph (captured again after ``warmup`` eager steps)."""
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: tuple[torch.Tensor, ...] = ()
        self.output: torch.Tensor | None = None
        self.key: Hashable = None
        self.eager_steps = 0

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.graph is not None and self.state_key() != self.key:
            self.reset()
        if self.graph is None and self.eager_steps < self.warmup:
            self.eager_steps += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.step(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self.graph is None:
            self.inputs = tuple(x.clone() for x in inputs)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.output = self.step(*self.inputs)
            self.key = self.state_key()
        else:
            for static, x in zip(self.inputs, inputs, strict=True):
                static.copy_(x)
        self.graph.replay()
        assert self.output is not None
        return self.output.clone()
