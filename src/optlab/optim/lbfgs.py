"""L-BFGS: ``torch.optim.LBFGS`` with two of its limitations mended.

The algorithm, its hyperparameters and its numbers are torch's (Nocedal & Wright,
*Numerical Optimization*, Algorithm 7.4 with torch's optional strong-Wolfe line search).
Mended here:

- non-contiguous parameters: torch flattens each gradient with ``view(-1)``, which fails
  for a transposed parameter; this class uses ``reshape(-1)`` (a copy only when needed);
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
        views = []
        for param in self._params:
            if param.grad is None:
                views.append(param.new_zeros(param.numel()))
            elif param.grad.is_sparse:
                views.append(param.grad.to_dense().reshape(-1))
            else:
                views.append(param.grad.reshape(-1))
        return torch.cat(views, 0)
