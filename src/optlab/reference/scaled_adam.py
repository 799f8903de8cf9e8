"""ScaledAdam (the "modified Adam"): Adam with the squared gradient scaled in the second moment.

    v = beta1 * v + (1 - beta1) * g
    s = beta2 * s + (1 - beta2) * scale * g**2   <- the only change from Adam
    v_corrected = v / (1 - beta1**t)
    s_corrected = s / (1 - beta2**t)
    theta = theta - learning_rate * v_corrected / (sqrt(s_corrected) + epsilon)

Identity: the same as Adam with learning_rate / sqrt(scale) and epsilon / sqrt(scale).
"""

from __future__ import annotations

import numpy as np

from optlab.reference.adam import Arrays, initialize_adam

initialize_scaled_adam = initialize_adam


def update_parameters_with_scaled_adam(
    parameters: Arrays,
    grads: Arrays,
    v: Arrays,
    s: Arrays,
    t: int,
    learning_rate: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    scale: float = 1.1,
) -> tuple[Arrays, Arrays, Arrays, Arrays, Arrays]:
    """One ScaledAdam step at step ``t`` (1-based).

    Returns ``(parameters, v, s, v_corrected, s_corrected)``, all new dicts.
    """
    new_parameters, new_v, new_s, v_corrected, s_corrected = {}, {}, {}, {}, {}
    for name, theta in parameters.items():
        key = "d" + name
        g = grads[key]
        new_v[key] = beta1 * v[key] + (1 - beta1) * g
        new_s[key] = beta2 * s[key] + (1 - beta2) * scale * g**2
        v_corrected[key] = new_v[key] / (1 - beta1**t)
        s_corrected[key] = new_s[key] / (1 - beta2**t)
        new_parameters[name] = theta - learning_rate * v_corrected[key] / (
            np.sqrt(s_corrected[key]) + epsilon
        )
    return new_parameters, new_v, new_s, v_corrected, s_corrected
