"""optlab.keras: parity with the NumPy references, compile/fit, serialisation, saved models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import optlab.keras as optlab_keras  # noqa: E402
from optlab import reference  # noqa: E402


@pytest.fixture
def float64():
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(previous)


def _gradient(theta: np.ndarray, curvature: np.ndarray) -> np.ndarray:
    return curvature * (theta - 1.0) + 0.3 * np.cos(3.0 * theta)


def _keras_trajectory(optimizer, start: dict[str, np.ndarray], curvature, steps: int = 100):
    variables = {
        name: keras.Variable(value.copy(), dtype="float64") for name, value in start.items()
    }
    for _ in range(steps):
        grads = [
            _gradient(keras.ops.convert_to_numpy(v), curvature[name])
            for name, v in variables.items()
        ]
        optimizer.apply_gradients(zip(grads, variables.values(), strict=True))
    return {name: keras.ops.convert_to_numpy(v) for name, v in variables.items()}


def _problem():
    rng = np.random.default_rng(3)
    start = {"W1": rng.standard_normal((4, 3)), "b1": rng.standard_normal(3)}
    curvature = {name: rng.uniform(0.5, 2.0, value.shape) for name, value in start.items()}
    return start, curvature


def _reference_trajectory(step, state, start, curvature, steps: int = 100):
    params = {name: value.copy() for name, value in start.items()}
    for t in range(1, steps + 1):
        grads = {"d" + name: _gradient(value, curvature[name]) for name, value in params.items()}
        params, state = step(params, grads, state, t)
    return params


CASES = {
    "imo": (
        lambda: optlab_keras.IMO(learning_rate=0.05),
        reference.initialize_imo,
        lambda p, g, s, t: reference.update_parameters_with_imo(p, g, s, learning_rate=0.05),
    ),
    "imo-box": (
        lambda: optlab_keras.IMO(learning_rate=0.05, step_form="algorithm-box"),
        reference.initialize_imo,
        lambda p, g, s, t: reference.update_parameters_with_imo(
            p, g, s, learning_rate=0.05, step_form="algorithm-box"
        ),
    ),
    "mamgd": (
        lambda: optlab_keras.MAMGD(learning_rate=0.05, k=0.01),
        reference.initialize_mamgd,
        lambda p, g, s, t: reference.update_parameters_with_mamgd(p, g, s, t, 0.05, k=0.01),
    ),
    "mamgd-published": (
        lambda: optlab_keras.MAMGD(learning_rate=0.05, as_published=True),
        reference.initialize_mamgd,
        lambda p, g, s, t: reference.update_parameters_with_mamgd(
            p, g, s, t, 0.05, as_published=True
        ),
    ),
    "scaled-adam": (
        lambda: optlab_keras.ScaledAdam(learning_rate=0.05, scale=2.0),
        lambda p: reference.initialize_scaled_adam(p),
        lambda p, g, s, t: _scaled_adam_step(p, g, s, t),
    ),
}


def _scaled_adam_step(params, grads, state, t):
    v, s = state
    params, v, s, _, _ = reference.update_parameters_with_scaled_adam(
        params, grads, v, s, t, learning_rate=0.05, scale=2.0
    )
    return params, (v, s)


@pytest.mark.parametrize("name", list(CASES))
def test_100_float64_steps_match_the_numpy_reference(name: str, float64) -> None:
    make, initialize, step = CASES[name]
    start, curvature = _problem()
    got = _keras_trajectory(make(), start, curvature)
    expected = _reference_trajectory(step, initialize(start), start, curvature)
    for key in start:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: optlab_keras.IMO(learning_rate=-0.1), "learning_rate"),
        (lambda: optlab_keras.IMO(momentum=1.0), "momentum"),
        (lambda: optlab_keras.IMO(step_form="x"), "step_form"),
        (lambda: optlab_keras.MAMGD(beta_1=1.5), "beta_1"),
        (lambda: optlab_keras.MAMGD(as_published="yes"), "as_published"),
        (lambda: optlab_keras.ScaledAdam(scale=0.0), "scale"),
        (lambda: optlab_keras.ScaledAdam(epsilon=float("nan")), "epsilon"),
    ],
)
def test_invalid_hyperparameters_name_the_field(factory, field: str) -> None:
    with pytest.raises((TypeError, ValueError), match=field):
        factory()


@pytest.mark.parametrize("cls", [optlab_keras.IMO, optlab_keras.MAMGD, optlab_keras.ScaledAdam])
def test_serialize_deserialize_round_trip(cls) -> None:
    optimizer = cls(learning_rate=0.02)
    config = keras.optimizers.serialize(optimizer)
    restored = keras.optimizers.deserialize(config)
    assert type(restored) is cls
    assert restored.get_config() == optimizer.get_config()


def test_compile_fit_save_and_load_a_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8)).astype("float32")
    y = (x @ rng.standard_normal(8) > 0).astype("int64")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
         keras.layers.Dense(2, activation="softmax")]
    )  # fmt: skip
    model.compile(
        optimizer=optlab_keras.MAMGD(learning_rate=0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(x, y, batch_size=64, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, optlab_keras.MAMGD)
    assert loaded.optimizer.get_config()["learning_rate"] == pytest.approx(0.01)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_importing_optlab_does_not_import_keras() -> None:
    code = "import sys, optlab, optlab.optim, optlab.testing; print('keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
