"""The 2-D objective on a grid, through a fake ``optlab.problems`` and the real one."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from optlab.report.landscape import Landscape, load_landscape, point_function


class _Point(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.x = torch.nn.Parameter(torch.tensor([-1.0, 2.0], dtype=torch.float64))


def _loss(model: _Point, batch: object = None) -> torch.Tensor:
    x = model.x
    if x.shape != (2,):  # refuses batches, as a real problem may
        raise ValueError("one point at a time")
    return (x[0] - 1.0) ** 2 + 3.0 * (x[1] + 0.5) ** 2


@dataclass(frozen=True)
class _Context:
    instance_seed: int = 42


def _fake_problems() -> types.ModuleType:
    module = types.ModuleType("optlab.problems")

    def build(name: str, context: _Context) -> object:
        if name == "fake-2d":
            return types.SimpleNamespace(
                model=_Point(), loss=_loss, plot_bounds=((-2, 3), (-2, 1)),
                minima=((1.0, -0.5),), optimum=0.0,
            )  # fmt: skip
        if name == "fake-3d":
            model = _Point()
            model.x = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
            return types.SimpleNamespace(model=model, loss=_loss, plot_bounds=None, minima=())
        raise KeyError(name)

    module.build = build  # type: ignore[attr-defined]
    module.BuildContext = _Context  # type: ignore[attr-defined]
    return module


def test_landscape_from_a_problems_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optlab.problems", _fake_problems())
    landscape = load_landscape("fake-2d", 42)
    assert isinstance(landscape, Landscape)
    assert landscape.bounds == ((-2.0, 3.0), (-2.0, 1.0))
    assert landscape.minima == ((1.0, -0.5),)
    assert landscape.optimum == 0.0
    X, Y, Z = landscape.grid(landscape.bounds, points=7)
    assert X.shape == Y.shape == Z.shape == (7, 7)
    np.testing.assert_allclose(Z, (X - 1.0) ** 2 + 3.0 * (Y + 0.5) ** 2)


def test_no_landscape_when_unknown_not_2d_or_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optlab.problems", _fake_problems())
    assert load_landscape("unknown") is None
    assert load_landscape("fake-3d") is None
    monkeypatch.setitem(sys.modules, "optlab.problems", None)  # import fails
    assert load_landscape("fake-2d") is None


def test_point_function_restores_the_parameter() -> None:
    instance = types.SimpleNamespace(model=_Point(), loss=_loss)
    values = point_function(instance)(np.array([[1.0, -0.5], [0.0, 0.0]]))
    np.testing.assert_allclose(values, [0.0, 1.75])
    assert instance.model.x.tolist() == [-1.0, 2.0]


def test_real_analytic_problem_if_available() -> None:
    try:
        from optlab.problems.analytic import SPECS
        from optlab.problems.base import BuildContext
    except Exception:  # the problems package is written elsewhere
        pytest.skip("optlab.problems.analytic is not available")
    spec = next((s for s in SPECS if s.name == "rosenbrock-2d"), None)
    if spec is None:
        pytest.skip("no rosenbrock-2d")
    values = point_function(spec.build(BuildContext()))(np.array([[1.0, 1.0], [0.0, 0.0]]))
    np.testing.assert_allclose(values, [0.0, 1.0])
