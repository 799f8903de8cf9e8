"""A hand-built coordinate-wise policy for tests: normalised gradient descent.

``a_i = clip(-3 tanh(tanh(g_hat_i)), -1, 1)`` where ``g_hat_i`` is the newest gradient
divided by the largest in the coordinate's history: every coordinate moves against its
gradient, so a known, deterministic optimizer that lowers a smooth loss.
"""

from __future__ import annotations

import torch

from optlab.optim.learned import CoordinatewiseNet, LearnedPolicy, PolicyConfig


def descent_policy(lr: float = 0.05, history_len: int = 4, hidden: int = 4) -> LearnedPolicy:
    """The policy described in the module docstring."""
    config = PolicyConfig(history_len=history_len, hidden=hidden, lr=lr)
    net = CoordinatewiseNet(config)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.zero_()
        net.encoder[0].weight[0, history_len - 1] = 1.0  # the newest scaled gradient
        net.encoder[2].weight[0, 0] = 1.0
        net.action_head.weight[0, 0] = -3.0
    net.eval()
    return LearnedPolicy(net, config)
