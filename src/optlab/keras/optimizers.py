"""Keras 3 versions of optlab's rules: IMO, MAMGD and ScaledAdam.

Each is a ``keras.optimizers.Optimizer`` (``build`` / ``update_step`` / ``get_config``),
registered for serialisation under the package name ``optlab``, so it works in
``model.compile(optimizer=...)``, ``keras.optimizers.serialize/deserialize`` and saved
``.keras`` models, on every Keras backend (tested on torch; ops only from ``keras.ops``).

The update rules, defaults and every choice are those of the torch classes (see
``optlab.optim.imo``, ``optlab.optim.mamgd``, ``optlab.optim.scaled_adam``) and of the
NumPy references in ``optlab.reference``; hyperparameters are validated by the same checks,
so the error messages are the same. Keras names follow Keras conventions
(``learning_rate``, ``beta_1``, ``beta_2``, ``epsilon``); the defaults are optlab's, not
Keras's (ScaledAdam's epsilon is 1e-8 like torch's Adam).

Keras extras (``weight_decay``, ``clipnorm``, ``use_ema``, ...) pass through to Keras.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from optlab.errors import InvalidValueError
from optlab.optim.hyperparameters import (
    check_betas,
    check_bool,
    check_choice,
    check_non_negative,
    check_positive,
    check_real,
    check_unit_interval,
)
from optlab.optim.imo import STEP_FORMS


def _check_learning_rate(owner: str, value: Any) -> None:
    """A number must be finite and >= 0; schedules and callables are Keras's business."""
    if isinstance(value, (int, float)):
        check_real(owner, "learning_rate", value, low=0.0)


@keras.saving.register_keras_serializable(package="optlab")
class ScaledAdam(keras.optimizers.Optimizer):
    r"""Adam with the squared gradient scaled by ``scale`` in the second moment.

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, s\, g^2 \\
        \theta &\leftarrow \theta - \eta\,\frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)}+\epsilon}

    Equal to Adam with learning rate :math:`\eta/\sqrt{s}` and epsilon :math:`\epsilon/\sqrt{s}`.
    Defaults: learning_rate 1e-3, beta_1 0.9, beta_2 0.999, epsilon 1e-8, scale 1.1.
    """

    def __init__(
        self,
        learning_rate: Any = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        scale: float = 1.1,
        name: str = "scaled_adam",
        **kwargs: Any,
    ) -> None:
        _check_learning_rate("ScaledAdam", learning_rate)
        check_betas("ScaledAdam", (beta_1, beta_2), "beta_1/beta_2")
        check_non_negative("ScaledAdam", "epsilon", epsilon)
        check_positive("ScaledAdam", "scale", scale)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon, self.scale = float(epsilon), float(scale)

    def build(self, var_list: list[Any]) -> None:
        """One first and one second moment per variable."""
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """One step for one variable."""
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        t = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign(m, self.beta_1 * m + (1 - self.beta_1) * g)
        self.assign(v, self.beta_2 * v + (1 - self.beta_2) * self.scale * ops.square(g))
        m_hat = m / (1 - ops.power(ops.cast(self.beta_1, dtype), t))
        v_hat = v / (1 - ops.power(ops.cast(self.beta_2, dtype), t))
        self.assign_sub(variable, lr * m_hat / (ops.sqrt(v_hat) + self.epsilon))

    def get_config(self) -> dict[str, Any]:
        """Serialisable configuration."""
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "scale": self.scale,
        }


@keras.saving.register_keras_serializable(package="optlab")
class IMO(keras.optimizers.Optimizer):
    r"""The Inertial Mass Optimizer (equations in ``optlab.optim.imo``).

    Per coordinate: the mass shrinks (``* alpha``) while the gradient keeps its sign and
    grows (``* beta``) otherwise, clipped to [mass_min, mass_max]; the force
    :math:`F = g/(\sqrt{m}+\epsilon)` drives a velocity :math:`v \leftarrow \mu v + (1-\mu)F`;
    the step is :math:`\theta \leftarrow \theta - \eta d` with
    :math:`d = \mu v + \tfrac12(1-\mu)F` (``"soft-nesterov"``, default) or
    :math:`d = v` where the sign held, else :math:`F` (``"algorithm-box"``, which also keeps
    the mass where :math:`g\,g_{prev} = 0`). Defaults: learning_rate 0.1, momentum 0.9,
    alpha 0.9, beta 1.1, mass_min 0.1, mass_max 10, epsilon 1e-8.
    """

    def __init__(
        self,
        learning_rate: Any = 0.1,
        momentum: float = 0.9,
        alpha: float = 0.9,
        beta: float = 1.1,
        mass_min: float = 0.1,
        mass_max: float = 10.0,
        epsilon: float = 1e-8,
        step_form: str = "soft-nesterov",
        name: str = "imo",
        **kwargs: Any,
    ) -> None:
        _check_learning_rate("IMO", learning_rate)
        check_unit_interval("IMO", "momentum", momentum)
        check_positive("IMO", "alpha", alpha)
        check_positive("IMO", "beta", beta)
        low = check_positive("IMO", "mass_min", mass_min)
        high = check_positive("IMO", "mass_max", mass_max)
        if low > high:
            raise InvalidValueError(
                f"IMO: mass_min must be <= mass_max, got mass_min={low!r} and mass_max={high!r}"
            )
        check_non_negative("IMO", "epsilon", epsilon)
        check_choice("IMO", "step_form", step_form, STEP_FORMS)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum, self.alpha, self.beta = float(momentum), float(alpha), float(beta)
        self.mass_min, self.mass_max = low, high
        self.epsilon, self.step_form = float(epsilon), step_form

    def build(self, var_list: list[Any]) -> None:
        """Previous gradient (zeros), mass (ones) and velocity (zeros) per variable."""
        if self.built:
            return
        super().build(var_list)
        self._prev_grads, self._velocities = self.add_optimizer_variables(
            var_list, ["prev_grad", "velocity"]
        )
        self._masses = self.add_optimizer_variables(var_list, "mass", initializer="ones")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """One step for one variable."""
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        index = self._get_variable_index(variable)
        prev, mass_variable, velocity = (
            self._prev_grads[index], self._masses[index], self._velocities[index]
        )  # fmt: skip
        mass = ops.convert_to_tensor(mass_variable)  # ops.where needs tensors on JAX
        agreement = g * prev
        consistent = ops.greater(agreement, 0)
        heavier = mass * self.beta
        if self.step_form == "algorithm-box":
            heavier = ops.where(ops.less(agreement, 0), heavier, mass)
        new_mass = ops.clip(ops.where(consistent, mass * self.alpha, heavier),
                            self.mass_min, self.mass_max)  # fmt: skip
        self.assign(mass_variable, new_mass)
        force = g / (ops.sqrt(new_mass) + self.epsilon)
        new_velocity = self.momentum * velocity + (1 - self.momentum) * force
        self.assign(velocity, new_velocity)
        if self.step_form == "algorithm-box":
            direction = ops.where(consistent, new_velocity, force)
        else:
            direction = self.momentum * new_velocity + 0.5 * (1 - self.momentum) * force
        self.assign_sub(variable, lr * direction)
        self.assign(prev, g)

    def get_config(self) -> dict[str, Any]:
        """Serialisable configuration."""
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "alpha": self.alpha,
            "beta": self.beta,
            "mass_min": self.mass_min,
            "mass_max": self.mass_max,
            "epsilon": self.epsilon,
            "step_form": self.step_form,
        }


@keras.saving.register_keras_serializable(package="optlab")
class MAMGD(keras.optimizers.Optimizer):
    r"""MAMGD (equations, source and choices in ``optlab.optim.mamgd``).

    At step t: :math:`\beta_{i,t} = \beta_i e^{-k(t-1)}`; moving averages m, n of g and
    :math:`g^2`; secant curvature :math:`c = (g-g_{prev})/(\theta-\theta_{prev}+\epsilon)`
    (0 at the first step and where the denominator is 0); step size
    :math:`\eta(1-\beta_{2,t}^t)/(1-\beta_{1,t}^t)`;
    :math:`\theta \leftarrow \theta - \alpha_t m/(\sqrt{c^2+n}+\epsilon)`.
    ``as_published=True``: the published Keras code's arithmetic, where c is always 0.
    Defaults: learning_rate 1e-3, beta_1 0.9, beta_2 0.999, k 1e-5, epsilon 1e-7.
    """

    def __init__(
        self,
        learning_rate: Any = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        k: float = 1e-5,
        epsilon: float = 1e-7,
        as_published: bool = False,
        name: str = "mamgd",
        **kwargs: Any,
    ) -> None:
        _check_learning_rate("MAMGD", learning_rate)
        check_betas("MAMGD", (beta_1, beta_2), "beta_1/beta_2")
        check_non_negative("MAMGD", "k", k)
        check_non_negative("MAMGD", "epsilon", epsilon)
        check_bool("MAMGD", "as_published", as_published)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.k, self.epsilon, self.as_published = float(k), float(epsilon), as_published

    def build(self, var_list: list[Any]) -> None:
        """m and n per variable; the previous parameter and gradient unless as published."""
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["m", "n"])
        if not self.as_published:
            self._prev_params, self._prev_grads = self.add_optimizer_variables(
                var_list, ["prev_param", "prev_grad"]
            )

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """One step for one variable."""
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        t = ops.cast(self.iterations + 1, dtype)
        decay = ops.exp(-self.k * (t - 1))
        beta_1, beta_2 = self.beta_1 * decay, self.beta_2 * decay
        step_size = lr * (1 - ops.power(beta_2, t)) / (1 - ops.power(beta_1, t))
        index = self._get_variable_index(variable)
        m, n = self._momentums[index], self._velocities[index]
        new_m = beta_1 * m + (1 - beta_1) * g
        new_n = beta_2 * n + (1 - beta_2) * ops.square(g)
        self.assign(m, new_m)
        self.assign(n, new_n)
        if self.as_published:
            curvature_squared = ops.zeros_like(g)
        else:
            prev_param, prev_grad = self._prev_params[index], self._prev_grads[index]
            gap = ops.convert_to_tensor(variable) - prev_param + self.epsilon
            usable = ops.logical_and(ops.not_equal(gap, 0), ops.greater(t, 1))
            secant = ops.where(usable, (g - prev_grad) / ops.where(usable, gap, 1), 0)
            curvature_squared = ops.square(secant)
            self.assign(prev_param, variable)
            self.assign(prev_grad, g)
        self.assign_sub(
            variable, step_size * new_m / (ops.sqrt(curvature_squared + new_n) + self.epsilon)
        )

    def get_config(self) -> dict[str, Any]:
        """Serialisable configuration."""
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "k": self.k,
            "epsilon": self.epsilon,
            "as_published": self.as_published,
        }
