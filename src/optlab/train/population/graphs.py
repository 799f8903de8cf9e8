"""CUDA graphs: one training step of a population captured once and replayed.

With ``HalvingConfig(cuda_graph=True)`` (:class:`GraphedStep`) one training step
(the N losses, backward and the optimizer step) is captured once as a CUDA graph after
warm-up steps on a side stream, and replayed for every later mini-batch copied into static
input buffers; an elimination re-captures (the survivors are new tensors). Requirements,
checked with an error that says which one failed: CUDA present and every parameter and
batch on it; a *capturable* optimizer (torch's classes that take ``capturable=True`` (Adam,
AdamW, RMSprop, ...) or torch's SGD, whose step reads no step count; optlab's elementwise
rules are not capturable yet: they read the step count on the host and pass per-step
scalars as Python floats, which a graph would freeze); batches of one shape (the short last
batch of an epoch runs as an ordinary eager step). Source: PyTorch, "CUDA Graphs",
https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs (whole-network capture).
"""

from __future__ import annotations

import inspect

import torch

from optlab.problems.base import Batch
from optlab.train.core import training_step
from optlab.train.population.stacked import Population, PopulationError

GRAPH_SAFE_WITHOUT_FLAG = (torch.optim.SGD,)
"""torch optimizers whose step reads no step count (safe to capture without ``capturable``)."""


def capturable_problem(optimizer: torch.optim.Optimizer) -> str | None:
    """Why ``optimizer.step()`` cannot be captured in a CUDA graph, or None if it can.

    A captured step replays the same kernels with the same arguments, so every per-step
    value must live in device memory: torch's classes do that with ``capturable=True``
    (step counts and bias corrections as device tensors); torch's SGD reads no step count.
    optlab's elementwise rules read ``state["step"]`` on the host (``.item()``) and pass
    per-step scalars (lr, bias corrections) as Python floats: a graph would freeze them at
    the captured step, so they need a capturable mode first.
    """
    name = type(optimizer).__name__
    if isinstance(optimizer, GRAPH_SAFE_WITHOUT_FLAG):
        return None
    module = type(optimizer).__module__
    if module.startswith("torch.optim"):
        if all(group.get("capturable") for group in optimizer.param_groups):
            return None
        if "capturable" in inspect.signature(type(optimizer)).parameters:
            return f"{name} needs capturable=True (population_optimizer(..., capturable=True))"
        return f"torch's {name} has no capturable mode; use adam, adamw, rmsprop or sgd"
    return (
        f"{name} ({module}) is not capturable: its step reads the step count on the host "
        "and passes per-step scalars as Python floats, which a CUDA graph freezes at the "
        "captured step; use torch's adam, adamw, rmsprop or sgd, or cuda_graph=False"
    )


def static_shape_problem(batch: Batch | None, static: Batch | None) -> str | None:
    """Why ``batch`` cannot be copied into a captured graph's static inputs ``static``
    (other shape, dtype or device), or None if it can."""
    if (batch is None) != (static is None):
        return "the graph was captured with" + (" no batch" if static is None else " a batch")
    if batch is None or static is None:
        return None
    for part, new, old in zip(("inputs", "targets"), batch, static, strict=True):
        if new.shape != old.shape:
            return (
                f"{part} of shape {tuple(new.shape)}, but the graph was captured for "
                f"{tuple(old.shape)} (a CUDA graph replays fixed shapes)"
            )
        if new.dtype != old.dtype:
            return f"{part} of dtype {new.dtype}, but the graph was captured for {old.dtype}"
    return None


def check_cuda_graph(population: Population, optimizer: torch.optim.Optimizer) -> None:
    """Raise :class:`PopulationError` naming the first requirement of a captured step that
    ``population`` and ``optimizer`` miss (CUDA, one device, a capturable optimizer)."""
    if not torch.cuda.is_available():
        raise PopulationError(
            "cuda_graph=True needs CUDA, and torch.cuda.is_available() is False here; "
            "use cuda_graph=False on CPU"
        )
    devices = {tensor.device for tensor in population.params.values()}
    if len(devices) != 1 or next(iter(devices)).type != "cuda":
        found = ", ".join(sorted(str(device) for device in devices))
        raise PopulationError(
            f"cuda_graph=True needs every parameter on one CUDA device; they are on {found} "
            "(build the problem with BuildContext(device='cuda'))"
        )
    data = population.template.data
    if data is not None and data.train[0].device not in devices:
        raise PopulationError(
            f"cuda_graph=True needs the training data on {next(iter(devices))}; it is on "
            f"{data.train[0].device}"
        )
    problem = capturable_problem(optimizer)
    if problem is not None:
        raise PopulationError(f"cuda_graph=True: {problem}")


class GraphedStep:
    """One training step of a population, captured once as a CUDA graph and replayed.

    ``step(batch)`` copies the batch into static input buffers and replays the graph of
    ``losses(static).sum().backward(); optimizer.step()``. The first ``warmup`` calls run
    eagerly on a side stream (lazy initialisation: cuBLAS workspaces, optimizer state,
    autograd buffers must not happen during capture), the next one captures, then every
    call replays. The eager steps are ordinary training steps, so a graphed run takes the
    same steps as an eager one. A batch of another shape (the short last batch of an
    epoch) runs as an eager step on the same tensors; :meth:`accepts` says which.

    After :meth:`Population.keep` the parameters are new tensors: make a new GraphedStep
    (it re-captures). Source: https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs
    """

    def __init__(
        self, population: Population, optimizer: torch.optim.Optimizer, warmup: int = 3
    ) -> None:
        check_cuda_graph(population, optimizer)
        self.population = population
        self.optimizer = optimizer
        self.warmup = warmup
        self.static: Batch | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.replays = 0
        self._eager_steps = 0

    def accepts(self, batch: Batch | None) -> bool:
        """Whether ``batch`` fits the captured static inputs (always, before capture)."""
        return self.static is None or static_shape_problem(batch, self.static) is None

    def _eager(self, batch: Batch | None) -> None:
        losses = self.population.losses
        training_step(self.optimizer, lambda: losses(batch), set_to_none=self.graph is None)

    def step(self, batch: Batch | None) -> None:
        """One training step on ``batch`` (eager warm-up, capture, or replay)."""
        if self.static is None:
            self.static = None if batch is None else (batch[0].clone(), batch[1].clone())
        elif not self.accepts(batch):
            self._eager(batch)  # e.g. the short last batch of an epoch
            return
        if batch is not None and self.static is not None:
            self.static[0].copy_(batch[0])
            self.static[1].copy_(batch[1])
        if self.graph is not None:
            self.graph.replay()
            self.replays += 1
            return
        if self._eager_steps < self.warmup:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._eager(self.static)
            torch.cuda.current_stream().wait_stream(side)
            self._eager_steps += 1
            return
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # backward allocates .grad in the pool
        try:
            with torch.cuda.graph(graph):
                self.population.losses(self.static).sum().backward()
                self.optimizer.step()
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise PopulationError(
                "cuda_graph=True: capturing the training step failed; the loss and the "
                "optimizer step must run without host synchronisation (.item(), printing, "
                f"data-dependent shapes) and allocate the same way each step ({first})"
            ) from error
        self.graph = graph
        graph.replay()  # the capture recorded the step without running it
        self.replays += 1
