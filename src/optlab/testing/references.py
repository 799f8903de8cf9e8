"""Adapters from registry names to the NumPy reference rules in ``optlab.reference``.

A :class:`ReferenceRule` starts a state from parameters and steps it with gradients; the
adapter translates torch-style hyperparameter names (``lr``, ``betas``, ``eps``) to the
reference's (``learning_rate``, ``beta1``/``beta2``, ``epsilon``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from optlab import reference

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class ReferenceRule:
    """``init(params) -> state``; ``step(params, grads, state, t, hyperparameters)``."""

    init: Callable[[Arrays], Any]
    step: Callable[[Arrays, Arrays, Any, int, Mapping[str, Any]], tuple[Arrays, Any]]


def _adam_kwargs(hp: Mapping[str, Any]) -> dict[str, Any]:
    beta1, beta2 = hp.get("betas", (0.9, 0.999))
    return {
        "learning_rate": hp.get("lr", 1e-3),
        "beta1": beta1,
        "beta2": beta2,
        "epsilon": hp.get("eps", 1e-8),
    }


def _adam_step(params: Arrays, grads: Arrays, state: Any, t: int, hp: Mapping[str, Any]):
    v, s = state
    params, v, s, _, _ = reference.update_parameters_with_adam(
        params, grads, v, s, t, **_adam_kwargs(hp)
    )
    return params, (v, s)


def _scaled_adam_step(params: Arrays, grads: Arrays, state: Any, t: int, hp: Mapping[str, Any]):
    v, s = state
    params, v, s, _, _ = reference.update_parameters_with_scaled_adam(
        params, grads, v, s, t, scale=hp.get("scale", 1.1), **_adam_kwargs(hp)
    )
    return params, (v, s)


def _imo_step(params: Arrays, grads: Arrays, state: Any, t: int, hp: Mapping[str, Any]):
    return reference.update_parameters_with_imo(
        params,
        grads,
        state,
        learning_rate=hp.get("lr", 0.1),
        momentum=hp.get("momentum", 0.9),
        alpha=hp.get("alpha", 0.9),
        beta=hp.get("beta", 1.1),
        mass_min=hp.get("mass_min", 0.1),
        mass_max=hp.get("mass_max", 10.0),
        epsilon=hp.get("eps", 1e-8),
        step_form=hp.get("step_form", "soft-nesterov"),
    )


def _mamgd_step(params: Arrays, grads: Arrays, state: Any, t: int, hp: Mapping[str, Any]):
    beta1, beta2 = hp.get("betas", (0.9, 0.999))
    return reference.update_parameters_with_mamgd(
        params,
        grads,
        state,
        t,
        learning_rate=hp.get("lr", 1e-3),
        beta1=beta1,
        beta2=beta2,
        k=hp.get("k", 1e-5),
        epsilon=hp.get("eps", 1e-7),
        as_published=hp.get("as_published", False),
    )


REFERENCE_RULES: dict[str, ReferenceRule] = {
    "adam": ReferenceRule(lambda p: reference.initialize_adam(p), _adam_step),
    "scaled-adam": ReferenceRule(lambda p: reference.initialize_scaled_adam(p), _scaled_adam_step),
    "imo": ReferenceRule(reference.initialize_imo, _imo_step),
    "mamgd": ReferenceRule(reference.initialize_mamgd, _mamgd_step),
}
