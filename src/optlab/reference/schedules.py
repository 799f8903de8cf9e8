"""Learning-rate decays of the seed notebooks.

update_lr:          learning_rate = learning_rate0 / (1 + decay_rate * epoch_num)
schedule_lr_decay:  learning_rate = learning_rate0 / (1 + decay_rate * floor(epoch_num / interval))
                    with interval = time_interval
"""

from __future__ import annotations

import math


def update_lr(learning_rate0: float, epoch_num: int, decay_rate: float) -> float:
    """Inverse-time decay, every epoch."""
    return learning_rate0 / (1 + decay_rate * epoch_num)


def schedule_lr_decay(
    learning_rate0: float, epoch_num: int, decay_rate: float, time_interval: int = 1000
) -> float:
    """Inverse-time decay in stairs of ``time_interval`` epochs."""
    return learning_rate0 / (1 + decay_rate * math.floor(epoch_num / time_interval))
