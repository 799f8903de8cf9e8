"""Plain NumPy textbook versions of optlab's update rules: the readable spec and the oracle.

Conventions (those of the seed notebooks, deeplearning.ai's "Optimization Methods"):
parameters are a dict such as ``{"W1": ..., "b1": ...}``; gradients and every
gradient-shaped state entry are keyed ``"d" + name`` (``grads["dW1"]``, ``v["dW1"]``).
No function modifies its inputs: each returns new dicts. Only NumPy is imported.
"""

from optlab.reference.adam import initialize_adam, update_parameters_with_adam
from optlab.reference.imo import initialize_imo, update_parameters_with_imo
from optlab.reference.mamgd import initialize_mamgd, update_parameters_with_mamgd
from optlab.reference.scaled_adam import (
    initialize_scaled_adam,
    update_parameters_with_scaled_adam,
)
from optlab.reference.schedules import schedule_lr_decay, update_lr

__all__ = [
    "initialize_adam",
    "initialize_imo",
    "initialize_mamgd",
    "initialize_scaled_adam",
    "schedule_lr_decay",
    "update_lr",
    "update_parameters_with_adam",
    "update_parameters_with_imo",
    "update_parameters_with_mamgd",
    "update_parameters_with_scaled_adam",
]
