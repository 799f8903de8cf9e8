"""MAMGD (Sakovich et al., Technologies 2024, 12, 154; Keras code NekkittAY/MAMGD_Optimizer).

At step t = 1, 2, ...:

    beta1_t = beta1 * exp(-k * (t - 1))          exponentially decayed betas
    beta2_t = beta2 * exp(-k * (t - 1))
    m = beta1_t * m + (1 - beta1_t) * g
    n = beta2_t * n + (1 - beta2_t) * g**2
    c = (g - g_prev) / (theta - theta_prev + epsilon)   discrete second derivative
        (c = 0 at t = 1, where there is no previous point, and wherever the
         denominator is exactly 0; always 0 when as_published: see below)
    step_size = learning_rate * (1 - beta2_t**t) / (1 - beta1_t**t)   (no square root, as
                                                                        in the code)
    theta_prev, g_prev = theta, g
    theta = theta - step_size * m / (sqrt(c**2 + n) + epsilon)

as_published=True is what the published Keras code computes: it reads the previous
parameter and gradient after overwriting them, so c is 0 / (0 + epsilon) = 0 at every step.
"""

from __future__ import annotations

import math

import numpy as np

from optlab.reference.adam import Arrays

State = dict[str, Arrays | None]


def initialize_mamgd(parameters: Arrays) -> State:
    """Zero moments ``m`` and ``n`` (keyed ``"d" + name``); no previous point yet."""
    return {
        "m": {"d" + name: np.zeros_like(p) for name, p in parameters.items()},
        "n": {"d" + name: np.zeros_like(p) for name, p in parameters.items()},
        "prev_params": None,
        "prev_grads": None,
    }


def update_parameters_with_mamgd(
    parameters: Arrays,
    grads: Arrays,
    state: State,
    t: int,
    learning_rate: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    k: float = 1e-5,
    epsilon: float = 1e-7,
    as_published: bool = False,
) -> tuple[Arrays, State]:
    """One MAMGD step at step ``t`` (1-based); returns ``(parameters, state)`` as new dicts."""
    beta1_t = beta1 * math.exp(-k * (t - 1))
    beta2_t = beta2 * math.exp(-k * (t - 1))
    step_size = learning_rate * (1 - beta2_t**t) / (1 - beta1_t**t)
    new_parameters: Arrays = {}
    new_m: Arrays = {}
    new_n: Arrays = {}
    for name, theta in parameters.items():
        key = "d" + name
        g = grads[key]
        new_m[key] = beta1_t * state["m"][key] + (1 - beta1_t) * g
        new_n[key] = beta2_t * state["n"][key] + (1 - beta2_t) * g**2
        if as_published or state["prev_params"] is None:
            c = np.zeros_like(g)
        else:
            gap = theta - state["prev_params"][name] + epsilon
            safe_gap = np.where(gap != 0, gap, 1.0)
            c = np.where(gap != 0, (g - state["prev_grads"][key]) / safe_gap, 0.0)
        new_parameters[name] = theta - step_size * new_m[key] / (
            np.sqrt(c**2 + new_n[key]) + epsilon
        )
    new_state: State = {
        "m": new_m,
        "n": new_n,
        "prev_params": None if as_published else {n: p.copy() for n, p in parameters.items()},
        "prev_grads": None if as_published else {k_: g.copy() for k_, g in grads.items()},
    }
    return new_parameters, new_state
