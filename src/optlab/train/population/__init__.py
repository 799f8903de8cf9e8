"""Many models in one process: a stacked population and successive halving (in-process core).

One module per idea:

- :mod:`~optlab.train.population.stacked`: :class:`Population`, N copies of a problem's
  model from N init seeds as ONE set of tensors stacked along a leading population axis,
  its losses (batched MLP or vmap), evaluation, training step and elimination (``keep``).
- :mod:`~optlab.train.population.optimizer`: :func:`population_optimizer`, ONE optimizer
  over the stacked tensors (for an elementwise rule that is exactly N independent
  optimizers), with per-member learning rates through torch's baselines' twins.
- :mod:`~optlab.train.population.streams`: the data order, shared by every member (member i
  follows exactly the trajectory a lone model from init seed i would) or per member.
- :mod:`~optlab.train.population.graphs`: a training step captured once as a CUDA graph.
- :mod:`~optlab.train.population.checkpoints`: a halving round's state on disk, atomically.
- :mod:`~optlab.train.population.halving`: :func:`successive_halving`, exact and resumable.
- :mod:`~optlab.train.population.seed_study`: :func:`seed_study`, winner against default
  seed and the median of N.

The batch stream, evaluation schedule, training step and stop decisions are the training
core's (:mod:`optlab.train.core`), the same as a lone model's (:func:`optlab.train.loop.train`),
the bench's learning-rate populations' and the Ray trainer's.
"""

from optlab.train.core import BatchStream
from optlab.train.population.checkpoints import (
    CheckpointWarning,
    remove_checkpoints,
    save_checkpoint,
)
from optlab.train.population.graphs import (
    GRAPH_SAFE_WITHOUT_FLAG,
    GraphedStep,
    capturable_problem,
    check_cuda_graph,
    static_shape_problem,
)
from optlab.train.population.halving import (
    HalvingConfig,
    HalvingResult,
    kept_count,
    successive_halving,
    survivors,
)
from optlab.train.population.optimizer import population_optimizer
from optlab.train.population.seed_study import SeedStudy, seed_study, steps_to_target
from optlab.train.population.stacked import (
    ELEMENTWISE_ACTIVATIONS,
    Population,
    PopulationError,
    mlp_losses,
    mlp_plan,
)
from optlab.train.population.streams import DATA_ORDERS, MemberBatches

__all__ = [
    "DATA_ORDERS",
    "ELEMENTWISE_ACTIVATIONS",
    "GRAPH_SAFE_WITHOUT_FLAG",
    "BatchStream",
    "CheckpointWarning",
    "GraphedStep",
    "HalvingConfig",
    "HalvingResult",
    "MemberBatches",
    "Population",
    "PopulationError",
    "SeedStudy",
    "capturable_problem",
    "check_cuda_graph",
    "kept_count",
    "mlp_losses",
    "mlp_plan",
    "population_optimizer",
    "remove_checkpoints",
    "save_checkpoint",
    "seed_study",
    "static_shape_problem",
    "steps_to_target",
    "successive_halving",
    "survivors",
]
