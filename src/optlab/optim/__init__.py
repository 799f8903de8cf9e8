"""optlab's optimizers: drop-in ``torch.optim.Optimizer`` classes, LR decays and a registry.

>>> import torch, optlab.optim as oo
>>> model = torch.nn.Linear(3, 1)
>>> opt = oo.create("imo", model.parameters(), lr=0.05)
>>> sorted(oo.names())[:3]
['adagrad', 'adam', 'adamw']
"""

from optlab.optim.elementwise import (
    COMPILE_MIN_NUMEL,
    ElementwiseOptimizer,
    SparseGradientError,
    TelemetryHook,
)
from optlab.optim.flat import FlatLayout, flatten_parameters
from optlab.optim.imo import IMO
from optlab.optim.lbfgs import LBFGS
from optlab.optim.learned import Learned, LearnedPolicy, PolicyConfig, load_policy, save_policy
from optlab.optim.mamgd import MAMGD
from optlab.optim.registry import (
    OptimizerSpec,
    UnknownOptimizerError,
    create,
    names,
    register,
    spec,
)
from optlab.optim.scaled_adam import ScaledAdam
from optlab.optim.schedules import InverseTimeDecay, StaircaseInverseTimeDecay

__all__ = [
    "COMPILE_MIN_NUMEL",
    "IMO",
    "LBFGS",
    "MAMGD",
    "ElementwiseOptimizer",
    "FlatLayout",
    "InverseTimeDecay",
    "Learned",
    "LearnedPolicy",
    "OptimizerSpec",
    "PolicyConfig",
    "ScaledAdam",
    "SparseGradientError",
    "StaircaseInverseTimeDecay",
    "TelemetryHook",
    "UnknownOptimizerError",
    "create",
    "flatten_parameters",
    "load_policy",
    "names",
    "register",
    "save_policy",
    "spec",
]
