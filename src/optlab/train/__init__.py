"""Training: one loop for every problem (``optlab.train.loop``)."""

from optlab.train.loop import TrainConfig, TrainResult, evaluate, train

__all__ = ["TrainConfig", "TrainResult", "evaluate", "train"]
