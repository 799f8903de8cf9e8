"""The NumPy references: the seed notebooks' API, shapes, and one step by hand."""

from __future__ import annotations

import numpy as np
import pytest

from optlab import reference


def _params() -> dict[str, np.ndarray]:
    return {"W1": np.ones((2, 3)), "b1": np.zeros((2, 1)), "W2": np.full((1, 2), 2.0)}


def test_initialize_adam_gives_zero_moments_shaped_like_each_entry() -> None:
    v, s = reference.initialize_adam(_params())
    assert set(v) == set(s) == {"dW1", "db1", "dW2"}
    for name, value in _params().items():
        assert v["d" + name].shape == value.shape and not v["d" + name].any()
        assert s["d" + name].shape == value.shape and not s["d" + name].any()


def test_adam_first_step_by_hand_and_inputs_untouched() -> None:
    params = _params()
    grads = {"d" + k: np.full_like(p, 0.5) for k, p in params.items()}
    v, s = reference.initialize_adam(params)
    new, v1, s1, v_corr, s_corr = reference.update_parameters_with_adam(
        params, grads, v, s, t=1, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8
    )
    np.testing.assert_allclose(v1["dW1"], 0.05)
    np.testing.assert_allclose(s1["dW1"], 0.001 * 0.25)
    np.testing.assert_allclose(v_corr["dW1"], 0.5)
    np.testing.assert_allclose(s_corr["dW1"], 0.25)
    np.testing.assert_allclose(new["W1"], 1.0 - 0.01 * 0.5 / (0.5 + 1e-8))
    assert np.all(params["W1"] == 1.0) and not v["dW1"].any()


def test_imo_reference_rejects_unknown_form() -> None:
    params = _params()
    state = reference.initialize_imo(params)
    grads = {"d" + k: np.ones_like(p) for k, p in params.items()}
    with pytest.raises(ValueError, match="step_form"):
        reference.update_parameters_with_imo(params, grads, state, step_form="nesterov")


def test_mamgd_reference_curvature_enters_from_the_second_step() -> None:
    params = {"x": np.array([1.0, -2.0])}
    state = reference.initialize_mamgd(params)
    paper, code = dict(params), dict(params)
    paper_state, code_state = state, state
    for t in (1, 2, 3):
        grad = {"dx": 2 * paper["x"] + t}
        paper, paper_state = reference.update_parameters_with_mamgd(
            paper, grad, paper_state, t, 0.1
        )
        grad = {"dx": 2 * code["x"] + t}
        code, code_state = reference.update_parameters_with_mamgd(
            code, grad, code_state, t, 0.1, as_published=True
        )
        if t == 1:
            np.testing.assert_array_equal(paper["x"], code["x"])
    assert not np.allclose(paper["x"], code["x"])
    assert code_state["prev_params"] is None and paper_state["prev_params"] is not None
