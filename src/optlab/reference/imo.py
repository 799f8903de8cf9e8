"""IMO, the Inertial Mass Optimizer (report in ashmithkp123-dotcom/Inertial-Mass-Optimizer-IMO-).

Per coordinate, starting from g_prev = 0, v = 0, m = 1:

    dir = sign(g * g_prev)
    m = m * alpha   where dir > 0           (consistent direction: lighter, faster)
    m = m * beta    where dir <= 0          ("soft-nesterov", the report's equation)
                    where dir < 0 only      ("algorithm-box", the report's algorithm box)
    m = clip(m, mass_min, mass_max)
    F = g / (sqrt(m) + epsilon)             force scaled by the mass
    v = momentum * v + (1 - momentum) * F
    d = momentum * v + 0.5 * (1 - momentum) * F     ("soft-nesterov")
    d = v where dir > 0, F elsewhere                  ("algorithm-box")
    theta = theta - learning_rate * d
    g_prev = g
"""

from __future__ import annotations

import numpy as np

from optlab.reference.adam import Arrays

State = dict[str, Arrays]


def initialize_imo(parameters: Arrays) -> State:
    """``{"prev_grad": ..., "mass": ..., "velocity": ...}``, each keyed ``"d" + name``."""
    return {
        "prev_grad": {"d" + name: np.zeros_like(p) for name, p in parameters.items()},
        "mass": {"d" + name: np.ones_like(p) for name, p in parameters.items()},
        "velocity": {"d" + name: np.zeros_like(p) for name, p in parameters.items()},
    }


def update_parameters_with_imo(
    parameters: Arrays,
    grads: Arrays,
    state: State,
    learning_rate: float = 0.1,
    momentum: float = 0.9,
    alpha: float = 0.9,
    beta: float = 1.1,
    mass_min: float = 0.1,
    mass_max: float = 10.0,
    epsilon: float = 1e-8,
    step_form: str = "soft-nesterov",
) -> tuple[Arrays, State]:
    """One IMO step; returns ``(parameters, state)`` as new dicts."""
    if step_form not in ("soft-nesterov", "algorithm-box"):
        raise ValueError(f"step_form must be 'soft-nesterov' or 'algorithm-box', got {step_form!r}")
    new_parameters: Arrays = {}
    new_state: State = {"prev_grad": {}, "mass": {}, "velocity": {}}
    for name, theta in parameters.items():
        key = "d" + name
        g = grads[key]
        direction_agrees = np.sign(g * state["prev_grad"][key])
        m = state["mass"][key]
        if step_form == "soft-nesterov":
            m = np.where(direction_agrees > 0, m * alpha, m * beta)
        else:
            m = np.where(
                direction_agrees > 0, m * alpha, np.where(direction_agrees < 0, m * beta, m)
            )
        m = np.clip(m, mass_min, mass_max)
        force = g / (np.sqrt(m) + epsilon)
        v = momentum * state["velocity"][key] + (1 - momentum) * force
        if step_form == "soft-nesterov":
            d = momentum * v + 0.5 * (1 - momentum) * force
        else:
            d = np.where(direction_agrees > 0, v, force)
        new_parameters[name] = theta - learning_rate * d
        new_state["prev_grad"][key] = g.copy()
        new_state["mass"][key] = m
        new_state["velocity"][key] = v
    return new_parameters, new_state
