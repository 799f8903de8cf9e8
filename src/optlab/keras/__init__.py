"""Keras 3 versions of optlab's optimizers (extra ``keras``): IMO, MAMGD, ScaledAdam.

Importing ``optlab`` never imports Keras; importing ``optlab.keras`` does (and says how to
install it when it is missing). Without ``KERAS_BACKEND`` set, it picks the torch backend
(optlab already depends on torch; TensorFlow is not needed).

>>> import keras, optlab.keras
>>> model = keras.Sequential([keras.layers.Dense(1)])
>>> model.compile(optimizer=optlab.keras.MAMGD(learning_rate=1e-3), loss="mse")
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

try:
    import keras  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    from optlab.errors import OptlabError

    raise OptlabError(
        "optlab.keras needs Keras 3: pip install 'optlab[keras]' (and a backend: torch, jax "
        "or tensorflow; set KERAS_BACKEND)"
    ) from error

from optlab.keras.optimizers import IMO, MAMGD, ScaledAdam

__all__ = ["IMO", "MAMGD", "ScaledAdam"]
