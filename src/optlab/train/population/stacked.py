"""The stacked population: N models of one problem as one set of tensors.

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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional

from optlab.errors import OptlabError
from optlab.problems.base import Batch, ProblemInstance
from optlab.problems.nets import cross_entropy_loss
from optlab.train.core import training_step
from optlab.train.loop import EVAL_CHUNK


class PopulationError(OptlabError):
    """Invalid population settings, or an optimizer that cannot be vectorised."""


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

    def step(
        self, optimizer: torch.optim.Optimizer, batch: Batch | None, *, per_member: bool = False
    ) -> torch.Tensor:
        """One training step of every member on ``batch`` (the training core's step over
        :meth:`losses`); returns the losses, one per member."""
        return training_step(optimizer, lambda: self.losses(batch, per_member=per_member))

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
