"""Adam (Kingma & Ba, ICLR 2015), written for reading.

v = beta1 * v + (1 - beta1) * g              first moment
s = beta2 * s + (1 - beta2) * g**2           second moment
v_corrected = v / (1 - beta1**t)             bias corrections (t counts from 1)
s_corrected = s / (1 - beta2**t)
theta = theta - learning_rate * v_corrected / (sqrt(s_corrected) + epsilon)
"""

from __future__ import annotations

import numpy as np

Arrays = dict[str, np.ndarray]


def initialize_adam(parameters: Arrays) -> tuple[Arrays, Arrays]:
    """Zero first and second moments ``(v, s)``, keyed ``"d" + name``, shaped like each entry."""
    v = {"d" + name: np.zeros_like(value) for name, value in parameters.items()}
    s = {"d" + name: np.zeros_like(value) for name, value in parameters.items()}
    return v, s


def update_parameters_with_adam(
    parameters: Arrays,
    grads: Arrays,
    v: Arrays,
    s: Arrays,
    t: int,
    learning_rate: float = 0.01,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> tuple[Arrays, Arrays, Arrays, Arrays, Arrays]:
    """One Adam step at step ``t`` (1-based).

    Returns ``(parameters, v, s, v_corrected, s_corrected)``, all new dicts.
    """
    new_parameters, new_v, new_s, v_corrected, s_corrected = {}, {}, {}, {}, {}
    for name, theta in parameters.items():
        key = "d" + name
        g = grads[key]
        new_v[key] = beta1 * v[key] + (1 - beta1) * g
        new_s[key] = beta2 * s[key] + (1 - beta2) * g**2
        v_corrected[key] = new_v[key] / (1 - beta1**t)
        s_corrected[key] = new_s[key] / (1 - beta2**t)
        new_parameters[name] = theta - learning_rate * v_corrected[key] / (
            np.sqrt(s_corrected[key]) + epsilon
        )
    return new_parameters, new_v, new_s, v_corrected, s_corrected
