"""The Stable-Baselines3 adapter: PPO trains the plain-torch coordinate-wise network.

:class:`CoordinatewisePolicy` is an ``ActorCriticPolicy`` whose pieces all come from one
:class:`optlab.optim.learned.CoordinatewiseNet`:

- features extractor: the identity (observations stay ``(batch, n, 3H + 1)``);
- "mlp extractor": the net's shared encoder; the actor latent is the per-coordinate action
  mean ``(batch, n)``, the critic latent the mean over coordinates of the encoding;
- ``action_net``: the identity (the mean is already per coordinate); ``log_std``: the net's
  single exploration scale (broadcast over coordinates); ``value_net``: the net's value head.

So PPO runs unchanged, and after training ``policy.coordinate_net`` is the network that
:func:`optlab.optim.learned.save_policy` writes and ``Learned`` runs: no SB3 needed then.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from optlab.errors import InvalidValueError
from optlab.optim.learned import CoordinatewiseNet, PolicyConfig


class CoordinateObservation(BaseFeaturesExtractor):
    """The identity: keeps the ``(batch, n, features)`` layout."""

    def __init__(self, observation_space: gym.spaces.Box) -> None:
        super().__init__(observation_space, features_dim=int(np.prod(observation_space.shape)))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Return the observations as they are."""
        return observations


class CoordinateHeads(nn.Module):
    """SB3's "mlp extractor" interface over a :class:`CoordinatewiseNet`."""

    def __init__(self, net: CoordinatewiseNet, coordinates: int) -> None:
        super().__init__()
        self.net = net
        self.latent_dim_pi = coordinates
        self.latent_dim_vf = net.config.hidden

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(action means, pooled encoding) from one pass of the encoder."""
        hidden = self.net.encode(features)
        return self.net.mean_from_hidden(hidden), self.net.pooled(hidden)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        """Action means ``(batch, n)``."""
        return self.net.mean(features)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        """The value head's input ``(batch, hidden)``."""
        return self.net.pooled(self.net.encode(features))


class CoordinatewisePolicy(ActorCriticPolicy):
    """An ``ActorCriticPolicy`` made of one shared per-coordinate network (module docstring).

    Extra keyword: ``policy_config`` (a :class:`PolicyConfig` or its dict).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Box,
        lr_schedule: Any,
        policy_config: PolicyConfig | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(policy_config, dict):
            policy_config = PolicyConfig(**policy_config)
        self.policy_config = policy_config or PolicyConfig()
        expected = self.policy_config.features
        if len(observation_space.shape) != 2 or observation_space.shape[1] != expected:
            raise InvalidValueError(
                f"CoordinatewisePolicy: observations must be (n, {expected}) for history_len "
                f"{self.policy_config.history_len}, got {observation_space.shape}"
            )
        kwargs.update(
            ortho_init=False,
            features_extractor_class=CoordinateObservation,
            share_features_extractor=True,
            log_std_init=self.policy_config.log_std_init,
        )
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build_mlp_extractor(self) -> None:
        net = CoordinatewiseNet(self.policy_config)
        self.mlp_extractor = CoordinateHeads(net, int(self.action_space.shape[0]))

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        net = self.mlp_extractor.net
        self.action_net = nn.Identity()
        self.log_std = net.log_std
        self.value_net = net.value_head
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    @property
    def coordinate_net(self) -> CoordinatewiseNet:
        """The plain-torch network being trained."""
        return self.mlp_extractor.net

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["policy_config"] = asdict(self.policy_config)
        for key in ("ortho_init", "features_extractor_class", "log_std_init"):
            data.pop(key, None)
        return data
