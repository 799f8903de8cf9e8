"""L-BFGS: ``torch.optim.LBFGS`` with two of its limitations mended.

The algorithm, its hyperparameters and its numbers are torch's (Nocedal & Wright,
*Numerical Optimization*, Algorithm 7.4 with torch's optional strong-Wolfe line search).
Mended here:

- non-contiguous parameters: torch flattens each gradient with ``view(-1)``, which fails
  for a transposed parameter; this class makes such a gradient contiguous first (a copy
  only then) and otherwise runs torch's code (complex parameters, ``maximize``);
- ``copy.deepcopy`` and pickling: torch keeps the parameter list in ``self._params``,
  which ``Optimizer.__getstate__`` drops, so a copy could not step; it is restored here.

Needs a closure; one parameter group only (as torch's). Not elementwise: its two-loop
recursion takes dot products over all parameters.
"""

from __future__ import annotations

from typing import Any

import torch


class LBFGS(torch.optim.LBFGS):
    """``torch.optim.LBFGS`` that also takes non-contiguous parameters and survives deepcopy."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._params = self.param_groups[0]["params"]
        self._numel_cache = None

    def _gather_flat_grad(self) -> torch.Tensor:
        # torch flattens with view(-1): give it contiguous dense gradients, and keep the
        # rest of its logic (complex parameters, maximize) as it is.
        for param in self._params:
            grad = param.grad
            if grad is not None and not grad.is_sparse and not grad.is_contiguous():
                param.grad = grad.contiguous()
        return super()._gather_flat_grad()
