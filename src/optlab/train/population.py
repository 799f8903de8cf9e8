"""Many models in one process: a stacked population and successive halving (in-process core).

A :class:`Population` holds N copies of a problem's model, built from N init seeds, as ONE
set of tensors stacked along a leading population axis (``torch.func.stack_module_state``).
ONE optimizer steps the stacked tensors: for an elementwise rule that is exactly N
independent optimizers (the contract kit's ``population`` check proves it for every
elementwise registry entry; rules with per-tensor reductions, such as L-BFGS, are refused).

Two ways to compute the N losses (:meth:`Population.losses`), chosen automatically:

- **batched MLP** (``batched=None`` picks it where it applies): a model that is an
  ``nn.Sequential`` of ``nn.Flatten`` (first), ``nn.Linear`` and elementwise activations,
  under the problems' cross-entropy loss, runs as hand-written batched matrix products.
  The first layer reads the SAME mini-batch for every member, so it is one GEMM over all
  members' weights stacked row-wise, :math:`H_1 = X\\,[W_1^{(1)}; \\dots; W_1^{(N)}]^T`
  (shape ``B x N*h``: one large product instead of N small ones, and its weight gradient
  is again one GEMM :math:`G^T X`); every later layer is ``torch.baddbmm``,
  :math:`H_{l+1}^{(i)} = b^{(i)} + H_l^{(i)} W^{(i)T}`; the loss is one cross-entropy over
  the ``N*B`` rows, averaged per member. Measured (``benchmarks/population.py``, 16 MNIST
  MLPs 784-128-10, batch 64, 100 Adam steps, median of 5, one thread on a loaded 2-core
  machine): loop of 16 models 2557 ms, vmap 2147 ms, batched 1939 ms (1.32x the loop
  against vmap's 1.19x); both paths are compute-bound there (the first layer's GEMMs and
  Adam's pass over 1.6M parameters), so batching saves overhead, not arithmetic. On two
  threads of the same loaded machine the two paths were within noise of each other
  (batched 13% faster in one run, 9% slower in another).
- **vmap** (every other model and loss): the problem's own loss for every member at once
  under ``torch.func.vmap`` of ``torch.func.functional_call``.

Both give member i exactly what a lone model from init seed i computes, up to the rounding
of a differently blocked matrix product (tested in float64).

:func:`successive_halving` trains all members for ``steps_per_round`` steps, evaluates each
on the validation split, keeps the best ``ceil(N x reduce_factor)``, capped at ``N - 1`` so
every round eliminates (:func:`kept_count`; lowest validation loss; a diverged member ranks
last) by slicing the survivors out of the parameters AND the
optimizer state, nothing restarted, and repeats while more than one member is left; the
last one then trains for ``final_steps`` more steps.

Resuming (``checkpoint_dir``): after every completed round the survivors' stacked
parameters and buffers, the optimizer's state dict, the mini-batch stream (generator state,
the epoch's permutation, the position in it), torch's global RNG state and the rounds so
far are written atomically (``torch.save`` to a temporary file in the same folder, fsync,
``os.replace``) to ``checkpoint_dir/round-K.pt``; the previous round's file is then
removed. A later call with the same arguments loads the latest checkpoint and continues
with round K+1, and its result equals an uninterrupted run's bit for bit. A checkpoint
that cannot be read, or was written by other arguments, is ignored with a
:class:`CheckpointWarning` (it is validated whole before anything is used). The caller
removes the folder (:func:`remove_checkpoints`) once it has stored the result.

Members share each mini-batch (the same data order, seeded by ``data_seed``), so member i
follows exactly the trajectory a lone model from init seed i would.

Per-member learning rates: pass ``lr`` as a 1-D tensor (one per member) to optlab's
elementwise rules, or to torch's baselines through their twins (:func:`population_optimizer`);
:meth:`Population.keep` slices them with the survivors.

CUDA graphs (``HalvingConfig(cuda_graph=True)``, :class:`GraphedStep`): one training step
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

Not here yet (see the population issue): the bench tuner on populations and the Ray path.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional

from optlab import optim
from optlab.durable import fsync_directory, pid_alive
from optlab.errors import OptlabError
from optlab.optim.twins import TWINS
from optlab.problems.base import Batch, ProblemInstance
from optlab.problems.nets import cross_entropy_loss
from optlab.train.loop import EVAL_CHUNK


class PopulationError(OptlabError):
    """Invalid population settings, or an optimizer that cannot be vectorised."""


class CheckpointWarning(UserWarning):
    """A halving checkpoint was ignored (unreadable, or written by other arguments)."""


class _LossOf(torch.nn.Module):
    """Wraps a problem's model and loss so that ``functional_call`` swaps every parameter the
    loss touches (a penalty reading ``model.weight`` included)."""

    def __init__(self, instance: ProblemInstance) -> None:
        super().__init__()
        self.model = instance.model
        self._loss = instance.loss

    def forward(self, batch: Batch | None) -> torch.Tensor:
        return self._loss(self.model, batch)


# ------------------------------------------------------------------------ batched MLPs
ELEMENTWISE_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Softplus,
    nn.Identity,
)  # fmt: skip
"""Layers the batched MLP path applies as they are to ``[N, B, features]`` activations."""

_Plan = list[tuple[str, Any]]


def mlp_plan(instance: ProblemInstance) -> _Plan | None:
    """The batched-MLP program of ``instance`` (see the module docstring), or None when its
    model or loss is not one the path covers (then :class:`Population` uses vmap).

    Covered: the loss is ``optlab.problems.nets.cross_entropy_loss`` (mean cross-entropy of
    ``model(x)`` against class labels in ``[0, C)``), and the model is an ``nn.Sequential``
    without buffers of an optional leading ``nn.Flatten()``, then ``nn.Linear`` layers and
    :data:`ELEMENTWISE_ACTIVATIONS` (exact types: a subclass may change ``forward``).
    """
    model = instance.model
    if instance.loss is not cross_entropy_loss or type(model) is not nn.Sequential:
        return None
    if any(True for _ in model.buffers()):
        return None
    plan: _Plan = []
    for name, layer in model.named_children():
        kind = type(layer)
        if kind is nn.Flatten and not plan and layer.start_dim == 1 and layer.end_dim == -1:
            plan.append(("flatten", None))
        elif kind is nn.Linear:
            bias = f"model.{name}.bias" if layer.bias is not None else None
            plan.append(("linear", (f"model.{name}.weight", bias)))
        elif kind in ELEMENTWISE_ACTIVATIONS and plan:
            plan.append(("activation", layer))
        else:
            return None
    return plan if any(kind == "linear" for kind, _ in plan) else None


def mlp_losses(plan: _Plan, params: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
    """Every member's mean cross-entropy on ``batch`` through the batched program ``plan``
    (shape ``[N]``); the maths is in the module docstring."""
    inputs, labels = batch
    hidden, shared = inputs, True  # shared: no population axis yet (the batch itself)
    for kind, item in plan:
        if kind == "flatten":
            hidden = hidden.flatten(1)
        elif kind == "linear":
            weight, bias = params[item[0]], None if item[1] is None else params[item[1]]
            members, width_out, width_in = weight.shape
            if shared:  # one GEMM: [B, in] x [in, N*out]
                rows = hidden.shape[0]
                flat_bias = None if bias is None else bias.reshape(members * width_out)
                product = functional.linear(
                    hidden, weight.reshape(members * width_out, width_in), flat_bias
                )
                hidden, shared = product.view(rows, members, width_out).transpose(0, 1), False
            elif bias is None:
                hidden = torch.bmm(hidden, weight.transpose(1, 2))
            else:
                hidden = torch.baddbmm(bias.unsqueeze(1), hidden, weight.transpose(1, 2))
        else:
            hidden = item(hidden)
    members, rows, classes = hidden.shape
    repeated = labels.repeat(members, *([1] * (labels.dim() - 1)))
    losses = functional.cross_entropy(
        hidden.reshape(members * rows, classes), repeated, reduction="none"
    )
    return losses.view(members, rows).mean(dim=1)


class Population:
    """N models stacked along a leading axis (see the module docstring).

    Args:
        instances: one built problem instance per member (same problem, same architecture).
        seeds: each member's init seed (its name in results).
        batched: True forces the batched-MLP path (an error where it does not apply),
            False forces vmap, None (default) takes the batched path wherever
            :func:`mlp_plan` covers the model.
    """

    def __init__(
        self,
        instances: Sequence[ProblemInstance],
        seeds: Sequence[int],
        *,
        batched: bool | None = None,
    ) -> None:
        if len(instances) < 1:
            raise PopulationError("a population needs at least 1 member")
        if len(instances) != len(seeds):
            raise PopulationError("one init seed per member is needed")
        if batched not in (None, True, False):
            raise PopulationError(f"batched must be True, False or None, got {batched!r}")
        self.template = instances[0]
        self.seeds = list(seeds)
        params, buffers = stack_module_state([instance.model for instance in instances])
        self.params = {f"model.{name}": tensor for name, tensor in params.items()}
        self.buffers = {f"model.{name}": tensor for name, tensor in buffers.items()}
        self._module = _LossOf(self.template)
        self.plan = None if batched is False else mlp_plan(self.template)
        if batched and self.plan is None:
            raise PopulationError(
                "batched=True needs an nn.Sequential of Flatten/Linear/elementwise "
                "activations under the cross-entropy loss; use batched=None or False"
            )

    def __len__(self) -> int:
        return len(self.seeds)

    @property
    def path(self) -> str:
        """``"batched-mlp"`` or ``"vmap"``: how :meth:`losses` computes."""
        return "vmap" if self.plan is None else "batched-mlp"

    def losses(self, batch: Batch | None, *, per_member: bool = False) -> torch.Tensor:
        """Each member's loss on ``batch`` (shape ``[N]``); with ``per_member=True`` the
        batch's tensors carry a leading population axis and member i sees slice i (vmap)."""
        if per_member and batch is not None:

            def own(params, buffers, member_batch):
                return functional_call(self._module, (params, buffers), (member_batch,))

            return vmap(own)(self.params, self.buffers, batch)
        if self.plan is not None and batch is not None:
            return mlp_losses(self.plan, self.params, batch)

        def one(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]):
            return functional_call(self._module, (params, buffers), (batch,))

        return vmap(one)(self.params, self.buffers)

    @torch.no_grad()
    def evaluate(self, split: Batch | None) -> torch.Tensor:
        """Each member's mean loss on a split (None: the analytic objective)."""
        if split is None:
            return self.losses(None).detach().double().cpu()
        inputs, targets = split
        total = torch.zeros(len(self), dtype=torch.float64)
        for start in range(0, len(inputs), EVAL_CHUNK):
            chunk = (inputs[start : start + EVAL_CHUNK], targets[start : start + EVAL_CHUNK])
            total += self.losses(chunk).double().cpu() * len(chunk[0])
        return total / len(inputs)

    def keep(self, members: Sequence[int], optimizer: torch.optim.Optimizer) -> None:
        """Keep only ``members`` (indices into the current population), in the parameters,
        in ``optimizer``'s state, which survivors carry over unchanged, and in per-member
        hyperparameters of its groups (a 1-D ``lr`` of one value per member)."""
        index = torch.as_tensor(list(members), dtype=torch.long)
        size = len(self)

        def sliced(value: Any) -> Any:
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == size:
                return value[index.to(value.device)].clone()
            return value

        replacements: dict[int, torch.Tensor] = {}
        for name, old in list(self.params.items()):
            new = old.detach()[index.to(old.device)].clone().requires_grad_(True)
            self.params[name] = new
            replacements[id(old)] = new
        for name, buffer in list(self.buffers.items()):
            self.buffers[name] = buffer[index.to(buffer.device)].clone()
        new_state: dict[torch.Tensor, dict[str, Any]] = {}
        for old, state in optimizer.state.items():
            new = replacements.get(id(old))
            if new is None:
                continue
            new_state[new] = {key: sliced(value) for key, value in state.items()}
        for group in optimizer.param_groups:
            group["params"] = [replacements.get(id(param), param) for param in group["params"]]
            for key, value in list(group.items()):
                if key != "params" and isinstance(value, torch.Tensor) and value.dim() == 1:
                    group[key] = sliced(value)
        optimizer.state.clear()
        optimizer.state.update(new_state)
        self.seeds = [self.seeds[i] for i in members]


DATA_ORDERS = ("shared", "per-member")


MAX_MEMBERS = 100_000
"""At most this many members in a halving run (``--num-models``)."""


@dataclass(frozen=True)
class HalvingConfig:
    """Successive halving: ``members`` models, keep ``ceil(n x reduce_factor)`` (at most
    ``n - 1``) per round.

    Attributes:
        members: population size N (>= 1).
        reduce_factor: fraction kept each round, in (0, 1).
        steps_per_round: optimizer steps between eliminations (>= 1).
        final_steps: steps the last survivor trains on afterwards (>= 0).
        data_seed: seeds the shared mini-batch order ("shared"), or the first member's
            ("per-member": member i, by position among the init seeds, draws with
            ``data_seed + i``).
        data_order: ``"shared"`` (every member sees the same mini-batch: member i follows a
            lone model from init seed i exactly) or ``"per-member"`` (each member its own
            seeded order, stacked along the population axis; full-batch and analytic
            problems have one order either way).
        cuda_graph: capture each round's training step as a CUDA graph and replay it
            (CUDA only; see the module docstring).
    """

    members: int = 16
    reduce_factor: float = 0.5
    steps_per_round: int = 100
    final_steps: int = 0
    data_seed: int = 42
    cuda_graph: bool = False
    data_order: str = "shared"

    def __post_init__(self) -> None:
        def integer(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise PopulationError(f"{name} must be an integer >= {low}, got {value!r}")

        integer("members", 1)
        if self.members > MAX_MEMBERS:  # a model copy each: a larger count is a typo
            raise PopulationError(f"members must be <= {MAX_MEMBERS:,}, got {self.members:,}")
        integer("steps_per_round", 1)
        integer("final_steps", 0)
        factor = self.reduce_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise PopulationError(f"reduce_factor must be in (0, 1), got {factor!r}")
        if not isinstance(self.cuda_graph, bool):
            raise PopulationError(f"cuda_graph must be True or False, got {self.cuda_graph!r}")
        if self.data_order not in DATA_ORDERS:
            raise PopulationError(
                f"data_order must be one of {', '.join(DATA_ORDERS)}, got {self.data_order!r}"
            )
        if self.cuda_graph and self.data_order == "per-member":
            raise PopulationError(
                "cuda_graph=True needs data_order='shared' (one static batch buffer)"
            )


@dataclass
class HalvingResult:
    """What a halving run did: per round, who was alive, their validation losses, who stayed."""

    rounds: list[dict[str, list[Any]]] = field(default_factory=list)
    winner_seed: int | None = None
    final_val_loss: float = math.nan
    test_loss: float = math.nan


def kept_count(alive: int, reduce_factor: float) -> int:
    """How many of ``alive`` members a round keeps: ``ceil(alive x reduce_factor)``, but at
    least 1 and at most ``alive - 1``, so every round eliminates someone (with a factor
    above 0.5, ceil(2 r) = 2 would otherwise keep two members forever)."""
    if alive <= 1:
        return alive
    return max(1, min(alive - 1, math.ceil(alive * reduce_factor)))


def survivors(losses: torch.Tensor, reduce_factor: float) -> list[int]:
    """Indices of the best :func:`kept_count` members (NaN ranks last), best first."""
    count = kept_count(len(losses), reduce_factor)
    ranked = torch.where(torch.isnan(losses), torch.inf, losses)
    order = sorted(range(len(losses)), key=lambda i: (float(ranked[i]), i))
    return order[:count]


GRAPH_SAFE_WITHOUT_FLAG = (torch.optim.SGD,)
"""torch optimizers whose step reads no step count (safe to capture without ``capturable``)."""


def population_optimizer(
    name: str,
    params: list[torch.Tensor],
    hyperparameters: dict[str, Any],
    *,
    capturable: bool = False,
) -> torch.optim.Optimizer:
    """The registry optimizer ``name`` over stacked parameters; with per-member learning
    rates (a 1-D ``lr`` tensor) torch's baselines become their elementwise twins
    (``optlab.optim.twins``), which accept them. ``capturable=True`` builds one that a CUDA
    graph can capture (torch's classes with ``capturable=True``, or torch's SGD) and raises
    :class:`PopulationError` naming the reason where there is none."""
    lr = hyperparameters.get("lr")
    entry = optim.spec(name)
    if isinstance(lr, torch.Tensor) and lr.numel() > 1 and name in TWINS:
        if capturable:
            raise PopulationError(
                f"cuda_graph=True: per-member learning rates run {name} as optlab's "
                "elementwise twin, which is not capturable (see capturable_problem)"
            )
        twin, fixed = TWINS[name]
        entry.validate({k: v for k, v in hyperparameters.items() if k != "lr"})
        return twin(params, **{**fixed, **hyperparameters})
    if not capturable:
        return optim.create(name, params, **hyperparameters)
    entry.validate(hyperparameters)
    factory = entry.factory
    accepts = isinstance(factory, type) and "capturable" in inspect.signature(factory).parameters
    if accepts:
        return factory(params, **{**entry.defaults, **hyperparameters, "capturable": True})
    built = factory(params, **{**entry.defaults, **hyperparameters})
    problem = capturable_problem(built)
    if problem is not None:
        raise PopulationError(f"cuda_graph=True: {problem}")
    return built


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


# ------------------------------------------------------------------------ data order
class BatchStream:
    """Endless mini-batches, exactly as :func:`optlab.train.loop.minibatches` draws them
    (a seeded permutation per epoch cut into ``batch_size`` slices; the whole set when
    ``batch_size`` is None; None forever for analytic problems), with a state that can be
    saved and restored: the generator's state, this epoch's permutation and the position."""

    def __init__(self, instance: ProblemInstance, seed: int) -> None:
        self.train = instance.data.train if instance.data is not None else None
        self.batch_size = instance.batch_size
        rows = 0 if self.train is None else len(self.train[0])
        self.full = self.batch_size is None or self.batch_size >= rows
        self.generator = torch.Generator().manual_seed(seed)
        self.order: torch.Tensor | None = None
        self.position = 0

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Batch | None:
        if self.train is None:
            return None
        inputs, targets = self.train
        if self.full:
            return inputs, targets
        assert self.batch_size is not None
        if self.order is None or self.position >= len(self.order):
            self.order = torch.randperm(len(inputs), generator=self.generator)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return inputs[index], targets[index]

    def state(self) -> dict[str, Any]:
        """What :meth:`restore` needs to continue the same sequence."""
        return {
            "generator": self.generator.get_state(),
            "order": self.order,
            "position": self.position,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state`."""
        self.generator.set_state(state["generator"])
        self.order = state["order"]
        self.position = int(state["position"])


def _batches(instance: ProblemInstance, seed: int) -> Iterator[Batch | None]:
    return BatchStream(instance, seed)


class MemberBatches:
    """One :class:`BatchStream` per member, each with its own data-order seed, stacked
    along a leading population axis (``Population.losses(batch, per_member=True)``);
    :meth:`keep` follows the survivors, :meth:`state` / :meth:`restore` resume."""

    def __init__(self, instance: ProblemInstance, seeds: Sequence[int]) -> None:
        self.seeds = [int(seed) for seed in seeds]
        self.streams = [BatchStream(instance, seed) for seed in self.seeds]

    def __iter__(self) -> MemberBatches:
        return self

    def __next__(self) -> Batch:
        batches = [next(stream) for stream in self.streams]
        inputs = torch.stack([batch[0] for batch in batches])  # type: ignore[index]
        targets = torch.stack([batch[1] for batch in batches])  # type: ignore[index]
        return inputs, targets

    def keep(self, members: Sequence[int]) -> None:
        """Keep the streams of ``members`` (indices into the current population)."""
        self.seeds = [self.seeds[i] for i in members]
        self.streams = [self.streams[i] for i in members]

    def state(self) -> dict[str, Any]:
        return {"seeds": list(self.seeds), "streams": [s.state() for s in self.streams]}

    def restore(self, state: dict[str, Any]) -> None:
        if len(state["streams"]) != len(self.streams):
            raise ValueError(f"{len(state['streams'])} batch streams for {len(self.streams)}")
        for stream, saved in zip(self.streams, state["streams"], strict=True):
            stream.restore(saved)


def _per_member(instance: ProblemInstance, config: HalvingConfig) -> bool:
    """Whether members draw their own batches: asked for, and the problem has mini-batches
    (full-batch and analytic problems have one order either way)."""
    if config.data_order != "per-member" or instance.data is None:
        return False
    rows = len(instance.data.train[0])
    return instance.batch_size is not None and instance.batch_size < rows


def _make_batches(
    instance: ProblemInstance, config: HalvingConfig, members: int, saved: Any = None
) -> BatchStream | MemberBatches:
    """The batch stream of a halving run (restored from ``saved`` when given)."""
    if not _per_member(instance, config):
        stream: BatchStream | MemberBatches = BatchStream(instance, config.data_seed)
    elif saved is not None:
        stream = MemberBatches(instance, saved["seeds"])
    else:
        stream = MemberBatches(instance, [config.data_seed + i for i in range(members)])
    if saved is not None:
        stream.restore(saved)
    return stream


# ------------------------------------------------------------------------ CUDA graphs
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
        self.optimizer.zero_grad(set_to_none=self.graph is None)
        self.population.losses(batch).sum().backward()
        self.optimizer.step()

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


# ------------------------------------------------------------------------ checkpoints
CHECKPOINT_FORMAT = "optlab-halving-checkpoint"
CHECKPOINT_VERSION = 1
_ROUND_FILE = re.compile(r"^round-(\d+)\.pt$")


def _plain(value: Any) -> Any:
    """A comparable, picklable-by-weights_only form of hyperparameters (tensors as lists)."""
    if isinstance(value, torch.Tensor):
        return {"tensor": value.detach().cpu().tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _identity(
    optimizer: str, hyperparameters: dict[str, Any], config: HalvingConfig, seeds: Sequence[int]
) -> dict[str, Any]:
    return {
        "optimizer": optimizer,
        "hyperparameters": _plain(hyperparameters),
        "config": asdict(config),
        "init_seeds": [int(seed) for seed in seeds],
    }


def save_checkpoint(directory: str | os.PathLike[str], number: int, payload: Any) -> Path:
    """Write ``payload`` to ``directory/round-<number>.pt`` atomically (temporary file in
    the same folder, flush, fsync, ``os.replace``, fsync of the folder), then remove the
    older rounds' files. Returns the path."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"round-{number}.pt"
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".round-{number}.{os.getpid()}.", suffix=".tmp", dir=folder
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        fsync_directory(folder)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    for path, other in _round_files(folder):
        if other < number:
            with contextlib.suppress(OSError):
                path.unlink()
    return final


def _round_files(folder: Path) -> list[tuple[Path, int]]:
    """``(path, round)`` of the checkpoint files in ``folder``, latest round first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _ROUND_FILE.match(path.name)
        if match:
            found.append((path, int(match.group(1))))
    return sorted(found, key=lambda item: -item[1])


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary files of writers that died mid-write (never read) are deleted."""
    if not folder.is_dir():
        return
    for path in folder.glob(".round-*.tmp"):
        parts = path.name.split(".")  # ".round-K.<pid>.<random>.tmp"
        if len(parts) >= 5 and parts[2].isdigit() and not pid_alive(int(parts[2])):
            with contextlib.suppress(OSError):
                path.unlink()


def remove_checkpoints(directory: str | os.PathLike[str]) -> None:
    """Delete a halving run's checkpoint folder (call it once the result is stored)."""
    shutil.rmtree(directory, ignore_errors=True)


def _sizes(config: HalvingConfig) -> list[int]:
    """Members alive at the start of each round: N, ceil(N r), ... down to 2."""
    sizes, alive = [], config.members
    while alive > 1:
        sizes.append(alive)
        alive = kept_count(alive, config.reduce_factor)
    return sizes


@dataclass
class _Run:
    """The live state of a halving run (what a checkpoint holds)."""

    population: Population
    optimizer: torch.optim.Optimizer
    batches: BatchStream | MemberBatches
    result: HalvingResult


def _checkpoint_payload(run: _Run, identity: dict[str, Any]) -> dict[str, Any]:
    population = run.population
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "identity": identity,
        "round": len(run.result.rounds),
        "rounds": run.result.rounds,
        "seeds": list(population.seeds),
        "params": {name: tensor.detach() for name, tensor in population.params.items()},
        "buffers": dict(population.buffers),
        "optimizer": run.optimizer.state_dict(),
        "batches": run.batches.state(),
        "rng": torch.get_rng_state(),
    }


def _restore(
    payload: Any,
    number: int,
    identity: dict[str, Any],
    build: Callable[[int], ProblemInstance],
    make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    config: HalvingConfig,
    batched: bool | None,
) -> _Run:
    """A run rebuilt from a loaded checkpoint; raises ValueError/KeyError/RuntimeError when
    anything in it does not fit (then nothing of it is used)."""
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("not an optlab halving checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint version {payload.get('version')!r}")
    if payload["identity"] != identity:
        raise ValueError("written by a run with other arguments")
    rounds, seeds = list(payload["rounds"]), [int(seed) for seed in payload["seeds"]]
    sizes = _sizes(config)
    if payload["round"] != number or len(rounds) != number or not 1 <= number <= len(sizes):
        raise ValueError(f"round {payload['round']!r} in a file named round {number}")
    expected = sizes[number] if number < len(sizes) else 1
    if len(seeds) != expected or seeds != [int(s) for s in rounds[-1]["kept"]]:
        raise ValueError(f"{len(seeds)} survivors where round {number} keeps {expected}")
    population = Population([build(seed) for seed in seeds], seeds, batched=batched)
    for kind in ("params", "buffers"):
        current: dict[str, torch.Tensor] = getattr(population, kind)
        saved: dict[str, torch.Tensor] = payload[kind]
        if set(saved) != set(current):
            raise ValueError(f"{kind} {sorted(saved)} where the model has {sorted(current)}")
        for name, tensor in current.items():
            value = saved[name]
            if value.shape != tensor.shape or value.dtype != tensor.dtype:
                raise ValueError(
                    f"{name} is {tuple(value.shape)} {value.dtype}, expected "
                    f"{tuple(tensor.shape)} {tensor.dtype}"
                )
            value = value.to(tensor.device).clone()
            current[name] = value.requires_grad_(True) if kind == "params" else value
    optimizer = make_optimizer(list(population.params.values()))
    optimizer.load_state_dict(payload["optimizer"])
    batches = _make_batches(population.template, config, len(seeds), payload["batches"])
    rng = payload["rng"]
    if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8:
        raise ValueError("the RNG state is not a byte tensor")
    result = HalvingResult(rounds=rounds)
    torch.set_rng_state(rng)
    return _Run(population, optimizer, batches, result)


def _resume(
    directory: Path,
    identity: dict[str, Any],
    build: Callable[[int], ProblemInstance],
    make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    config: HalvingConfig,
    batched: bool | None,
) -> _Run | None:
    """The run of the latest valid checkpoint in ``directory``, or None."""
    _remove_stale_temporaries(directory)
    for path, number in _round_files(directory):
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            return _restore(payload, number, identity, build, make_optimizer, config, batched)
        except Exception as error:  # unreadable or unfit: never used, half or whole
            warnings.warn(
                f"ignoring halving checkpoint {path}: {type(error).__name__}: {error}",
                CheckpointWarning,
                stacklevel=3,
            )
    return None


# ------------------------------------------------------------------------ halving
def successive_halving(
    build: Callable[[int], ProblemInstance],
    init_seeds: Sequence[int],
    optimizer: str,
    hyperparameters: dict[str, Any],
    config: HalvingConfig,
    *,
    on_round: Callable[[dict[str, list[Any]]], None] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_key: str | None = None,
    batched: bool | None = None,
) -> tuple[HalvingResult, Population]:
    """Train a population from ``init_seeds`` and halve it until one member is left.

    Args:
        build: the problem instance of an init seed.
        init_seeds: one per member (``config.members`` of them).
        optimizer: an elementwise registry name; ``hyperparameters`` its settings.
        config: the halving schedule (and ``cuda_graph``).
        on_round: called with each round's record (after its checkpoint is written).
        checkpoint_dir: where to checkpoint each round and resume from (module docstring);
            None: no checkpoints.
        checkpoint_key: what ``build`` builds, named by the caller (e.g. a hash of the
            problem, instance seed and data): ``build`` itself cannot be compared, so a
            checkpoint of another problem with same-shaped models is told apart only by
            this key (the CLI passes its record's config key).
        batched: the :class:`Population` path (None: automatic).
    """
    if len(init_seeds) != config.members:
        raise PopulationError(
            f"members is {config.members} but {len(init_seeds)} init seeds were given"
        )
    entry = optim.spec(optimizer)
    if not entry.elementwise or entry.requires_closure:
        elementwise = ", ".join(n for n in optim.names() if optim.spec(n).elementwise)
        raise PopulationError(
            f"{optimizer} cannot be vectorised over a population (it is not elementwise); "
            f"elementwise optimizers: {elementwise}"
        )

    def make_optimizer(params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return population_optimizer(
            optimizer, params, hyperparameters, capturable=config.cuda_graph
        )

    identity = _identity(optimizer, hyperparameters, config, init_seeds)
    identity["checkpoint_key"] = checkpoint_key
    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    run = None
    if folder is not None:
        run = _resume(folder, identity, build, make_optimizer, config, batched)
    if run is None:
        population = Population([build(seed) for seed in init_seeds], init_seeds, batched=batched)
        run = _Run(
            population,
            make_optimizer(list(population.params.values())),
            _make_batches(population.template, config, len(init_seeds)),
            HalvingResult(),
        )
    population, opt, batches, result = run.population, run.optimizer, run.batches, run.result
    validation = population.template.data.validation if population.template.data else None
    graphed = GraphedStep(population, opt) if config.cuda_graph else None

    def train(steps: int) -> None:
        for _ in range(steps):
            batch = next(batches)
            if graphed is not None:
                graphed.step(batch)
                continue
            opt.zero_grad(set_to_none=True)
            per_member = isinstance(batches, MemberBatches)
            population.losses(batch, per_member=per_member).sum().backward()
            opt.step()

    while len(population) > 1:
        train(config.steps_per_round)
        losses = population.evaluate(validation)
        record = {"seeds": list(population.seeds), "val_loss": losses.tolist()}
        kept = survivors(losses, config.reduce_factor)
        record["kept"] = [population.seeds[i] for i in kept]
        result.rounds.append(record)
        population.keep(kept, opt)
        if isinstance(batches, MemberBatches):
            batches.keep(kept)
        if graphed is not None:
            graphed = GraphedStep(population, opt)  # new tensors: capture again
        if folder is not None:
            try:
                save_checkpoint(folder, len(result.rounds), _checkpoint_payload(run, identity))
            except OSError as error:  # a lost checkpoint costs a re-run, not this run
                warnings.warn(
                    f"could not write a halving checkpoint in {folder}: {error}",
                    CheckpointWarning,
                    stacklevel=2,
                )
        if on_round is not None:
            on_round(record)
    if config.final_steps:
        train(config.final_steps)
    result.winner_seed = population.seeds[0]
    result.final_val_loss = float(population.evaluate(validation)[0])
    test = population.template.data.test if population.template.data else None
    result.test_loss = float(population.evaluate(test)[0])
    return result, population


# ------------------------------------------------------------------------ seed study
@dataclass
class SeedStudy:
    """Seed-aware halving: is the winner better, or just lucky?

    Per repeat (a fresh block of N init seeds and a fresh selection data order):
    ``winner`` is the halving winner retrained alone with a *fresh* data-order seed,
    ``default`` the default init seed trained with that same fresh data order, and
    ``median`` the median over all N inits trained without elimination (selection data
    order). Each value is the number of steps to reach the problem's validation target
    (``target``; ``inf`` when never reached within the budget). ``curves`` holds, per repeat, the
    validation loss of each arm at every evaluated step (``"step"``, ``"winner"``,
    ``"default"``, and ``"median"``: at each step the median over the N inits).
    """

    winner: list[float] = field(default_factory=list)
    default: list[float] = field(default_factory=list)
    median: list[float] = field(default_factory=list)
    winner_seeds: list[int] = field(default_factory=list)
    curves: list[dict[str, list[float]]] = field(default_factory=list)
    target: float = math.nan

    def summary(self) -> dict[str, float]:
        """Mean and std (sample, n - 1) of each arm over the repeats, and the winner's
        relative saving in steps against the default seed, ``(default - winner) /
        default`` per repeat (the seeds' "14.3% faster" is this number). An arm that never
        reached the target in some repeat has an infinite mean."""

        def mean_std(values: list[float]) -> tuple[float, float]:
            finite = torch.tensor(values, dtype=torch.float64)
            if not torch.isfinite(finite).all():
                return math.inf, math.nan
            return float(finite.mean()), float(finite.std()) if len(values) > 1 else 0.0

        out: dict[str, float] = {}
        for arm in ("winner", "default", "median"):
            out[f"{arm}_mean"], out[f"{arm}_std"] = mean_std(getattr(self, arm))
        savings = [
            (d - w) / d for w, d in zip(self.winner, self.default, strict=True) if math.isfinite(d)
        ]
        out["saving_vs_default_mean"], out["saving_vs_default_std"] = (
            mean_std(savings) if savings else (math.nan, math.nan)
        )
        return out

    def as_record(self) -> dict[str, Any]:
        """Plain values for the results store (``optlab multi-init --seed-study``)."""
        return {
            "winner": list(self.winner),
            "default": list(self.default),
            "median": list(self.median),
            "winner_seeds": list(self.winner_seeds),
            "curves": [dict(curve) for curve in self.curves],
            "target": self.target,
            "summary": self.summary(),
        }


def _track(
    population: Population,
    optimizer: torch.optim.Optimizer,
    steps: int,
    eval_every: int,
    data_seed: int,
) -> tuple[list[float], list[int], list[list[float]]]:
    """Train every member; (first step at the target per member, evaluated steps, each
    member's validation loss at those steps)."""
    template = population.template
    batches = _batches(template, data_seed)
    validation = template.data.validation if template.data else None
    reached = [math.inf] * len(population)
    evaluated: list[int] = []
    curves: list[list[float]] = [[] for _ in range(len(population))]
    for step in range(1, steps + 1):
        batch = next(batches)
        optimizer.zero_grad(set_to_none=True)
        population.losses(batch).sum().backward()
        optimizer.step()
        if step % eval_every == 0 or step == steps:
            losses = population.evaluate(validation)
            evaluated.append(step)
            for member, value in enumerate(losses.tolist()):
                curves[member].append(value)
                if value <= template.target and math.isinf(reached[member]):
                    reached[member] = float(step)
    return reached, evaluated, curves


def steps_to_target(
    population: Population,
    optimizer: torch.optim.Optimizer,
    steps: int,
    eval_every: int,
    data_seed: int,
) -> list[float]:
    """Train every member for ``steps`` steps; each member's first evaluated step at which
    its validation loss reached the problem's target (``inf`` if never)."""
    return _track(population, optimizer, steps, eval_every, data_seed)[0]


def seed_study(
    build: Callable[[int], ProblemInstance],
    optimizer: str,
    hyperparameters: dict[str, Any],
    config: HalvingConfig,
    *,
    steps: int,
    eval_every: int,
    repeats: int = 3,
    default_seed: int = 42,
    first_seed: int = 1000,
    on_repeat: Callable[[int], None] | None = None,
) -> SeedStudy:
    """Measure halving honestly (see :class:`SeedStudy`); ``steps`` is each arm's budget.

    Repeat ``r`` uses init seeds ``first_seed + r*N ... first_seed + r*N + N - 1``, the
    selection data order ``10_000 + r`` and the fresh data order ``20_000 + r``;
    ``on_repeat(r)`` is called after each repeat.
    """
    checks = (("repeats", repeats, 1), ("steps", steps, 1), ("eval_every", eval_every, 1),
              ("first_seed", first_seed, 0))  # fmt: skip
    for name, value, low in checks:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise PopulationError(f"{name} must be an integer >= {low}, got {value!r}")
    study = SeedStudy()
    for repeat in range(repeats):
        seeds = [first_seed + repeat * config.members + i for i in range(config.members)]
        selection_seed, fresh_seed = 10_000 + repeat, 20_000 + repeat
        halving = HalvingConfig(
            members=config.members,
            reduce_factor=config.reduce_factor,
            steps_per_round=config.steps_per_round,
            data_seed=selection_seed,
        )
        result, _ = successive_halving(build, seeds, optimizer, hyperparameters, halving)
        everyone = Population([build(seed) for seed in seeds], seeds)
        all_steps, evaluated, all_curves = _track(
            everyone,
            population_optimizer(optimizer, list(everyone.params.values()), hyperparameters),
            steps,
            eval_every,
            selection_seed,
        )
        pair = Population([build(result.winner_seed), build(default_seed)], [0, 1])
        study.target = float(pair.template.target)
        (winner, default), _, (winner_curve, default_curve) = _track(
            pair,
            population_optimizer(optimizer, list(pair.params.values()), hyperparameters),
            steps,
            eval_every,
            fresh_seed,
        )
        median_curve = torch.tensor(all_curves, dtype=torch.float64).median(dim=0).values
        study.winner.append(winner)
        study.default.append(default)
        study.median.append(float(torch.tensor(all_steps).median()))
        study.winner_seeds.append(int(result.winner_seed))
        study.curves.append(
            {
                "step": [float(step) for step in evaluated],
                "winner": winner_curve,
                "default": default_curve,
                "median": median_curve.tolist(),
            }
        )
        if on_repeat is not None:
            on_repeat(repeat)
    return study
