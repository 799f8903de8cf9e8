"""Training: the core every trainer shares (``optlab.train.core``: batch stream, evaluation
schedule, training step, stop decisions), one loop for every problem (``optlab.train.loop``)
and populations of models in one process (``optlab.train.population``)."""

from optlab.train.loop import TrainConfig, TrainResult, evaluate, train

__all__ = ["TrainConfig", "TrainResult", "evaluate", "train"]
