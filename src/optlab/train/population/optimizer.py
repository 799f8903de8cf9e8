"""The optimizer of a population: a registry rule over the stacked parameters.

Per-member learning rates: pass ``lr`` as a 1-D tensor (one per member); the entry's record
says how it takes them (:class:`optlab.optim.spec.PopulationForm`: optlab's elementwise rules
natively, torch's baselines through their twins in ``optlab.optim.twins``, ScaledAdam through
its identity with Adam); :meth:`optlab.train.population.Population.keep` slices them with
the survivors.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from optlab import optim
from optlab.train.population.graphs import capturable_problem
from optlab.train.population.stacked import PopulationError


def population_optimizer(
    name: str,
    params: list[torch.Tensor],
    hyperparameters: dict[str, Any],
    *,
    capturable: bool = False,
) -> torch.optim.Optimizer:
    """The registry optimizer ``name`` over stacked parameters; with per-member learning
    rates (a 1-D ``lr`` tensor) it is built by the entry's population form (torch's
    baselines become their elementwise twins, which accept them). ``capturable=True``
    builds one that a CUDA graph can capture (torch's classes with ``capturable=True``, or
    torch's SGD) and raises :class:`PopulationError` naming the reason where there is none."""
    lr = hyperparameters.get("lr")
    entry = optim.spec(name)
    members = isinstance(lr, torch.Tensor) and lr.numel() > 1
    if members and entry.population is None:
        raise PopulationError(f"{name} takes no per-member learning rates (one lr per model)")
    if members and entry.population is not None and entry.population.kind != "native":
        if capturable:
            raise PopulationError(
                f"cuda_graph=True: per-member learning rates run {name} as optlab's "
                "elementwise twin, which is not capturable (see capturable_problem)"
            )
        return entry.member_lr_optimizer(params, hyperparameters)
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
