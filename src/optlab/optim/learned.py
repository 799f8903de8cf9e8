r"""Learned: an optimizer whose update rule is a trained policy network (plain torch).

Sources: K. Li and J. Malik, "Learning to Optimize", ICLR 2017 (arXiv:1606.01885, 2016):
optimisation as a sequential decision problem, the policy trained by reinforcement
learning; M. Andrychowicz et al., "Learning to learn by gradient descent by gradient
descent", NeurIPS 2016 (arXiv:1606.04474): one small network shared by every coordinate,
so that a policy trained on small problems runs on models of any size.

The rule, per step :math:`t` (the objective :math:`f` and its gradient :math:`g` are read
at the current point :math:`x_t`; :math:`H` is the history length, slot :math:`H-1` the
newest). The optimizer keeps, per coordinate :math:`i`, the last :math:`H` gradients
:math:`G_{k,i}`, the last :math:`H` actions :math:`U_{k,i}` and the last :math:`H`
objective values :math:`F_k` (a new history is filled with zeros for :math:`G, U` and with
the first objective value for :math:`F`). Each coordinate sees :math:`3H + 1` numbers:

.. math::

    s_i &= \max_k |G_{k,i}|, \qquad
    \hat g_{k,i} = G_{k,i} / s_i \;(0 \text{ where } s_i = 0) \\
    \Delta_k &= F_{H-1} - F_k, \qquad
    d_k = \Delta_k / \max_j |\Delta_j| \;(0 \text{ where all } \Delta = 0) \\
    \hat u_{k,i} &= U_{k,i} / c \\
    r_i &= \operatorname{clip}\big(\log_{10}((s_i + \epsilon) / (\bar s + \epsilon)) / 3,
           -1, 1\big), \quad \bar s = \operatorname{mean}_j s_j

(all in [-1, 1]: the gradient history scaled per coordinate, the Li & Malik objective
history "current objective minus objective at step k, scaled to [-1, 1]", the coordinate's
own past actions, and its gradient size relative to the others). A network
:math:`\phi` shared by all coordinates maps them to an action and the parameter moves:

.. math::

    a_{t,i} &= \operatorname{clip}(\mu_\theta(\hat g_{\cdot,i}, d, \hat u_{\cdot,i}, r_i),
               -c, c) \\
    x_{t+1,i} &= x_{t,i} + \eta\, a_{t,i}

:math:`\eta` is the group's ``lr`` (default: the step scale the policy was trained with),
:math:`c` the action bound (1). :math:`\mu_\theta` is an MLP
``(3H+1) -> hidden -> hidden -> 1`` with tanh; the value head used in training reads the
mean over coordinates of the last hidden layer (it plays no part in the update).

State per parameter: ``step``, ``grad_history`` and ``action_history`` (``H`` parameter-sized
tensors each) and ``objective_history`` (``H`` values): ``2H`` copies of the parameter.
Each step also builds an ``(N, 3H + 1)`` float32 feature matrix and runs the network on
it (``N`` = all parameters): fine for the models optlab benches, costly for very large ones.
Not elementwise: :math:`d` and :math:`r` couple all coordinates (the objective is shared).
``step`` needs a closure that returns the loss (the policy observes the objective), and
calls it once (one gradient evaluation). Sparse gradients raise.

The policy file (:func:`save_policy` / :func:`load_policy`) is a ``torch.save`` dict
``{"format": "optlab-learned-policy", "version": 1, "config": {...}, "state_dict": {...}}``
read with ``weights_only=True``: loading and running a policy needs torch only. Training
(``optlab.rl``) writes it with a JSON of its training config beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import ParamsT

from optlab.optim.errors import InvalidTypeError, InvalidValueError, OptlabError, UnsupportedError
from optlab.optim.hyperparameters import check_learning_rate

MAX_HISTORY_LEN = 1_000
"""At most this many steps of history (a policy's state is ``2 H`` parameter copies)."""
MAX_HIDDEN = 4_096
"""At most this wide a hidden layer (about 17M weights at ``H`` = 1,000): a policy file's
config is checked against these before any network is allocated for it."""
FORMAT = "optlab-learned-policy"
VERSION = 1
SCALE_EPS = 1e-30
RELATIVE_DECADES = 3.0


class PolicyFileError(OptlabError):
    """A policy file is missing, unreadable, or does not match what it declares."""


@dataclass(frozen=True)
class PolicyConfig:
    """The shape and the scales of a coordinate-wise policy.

    Attributes:
        history_len: ``H``, steps of history each coordinate sees (>= 1).
        hidden: width of the two hidden layers (>= 1).
        lr: the step scale ``eta`` the policy was trained with (``Learned``'s default lr).
        action_clip: ``c``, the bound of an action (> 0).
        log_std_init: initial log standard deviation of the exploration noise (training).
    """

    history_len: int = 10
    hidden: int = 32
    lr: float = 0.1
    action_clip: float = 1.0
    log_std_init: float = -0.5

    def __post_init__(self) -> None:
        for name, most in (("history_len", MAX_HISTORY_LEN), ("hidden", MAX_HIDDEN)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise InvalidValueError(
                    f"PolicyConfig: {name} must be an integer >= 1 and <= {most:,}, got {value!r}"
                )
        for name in ("lr", "action_clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidTypeError(f"PolicyConfig: {name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise InvalidValueError(
                    f"PolicyConfig: {name} must be a finite number > 0, got {value!r}"
                )
        check_learning_rate("PolicyConfig", self.lr)  # at most the largest float32
        value = self.log_std_init
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise InvalidValueError(
                f"PolicyConfig: log_std_init must be a finite number, got {value!r}"
            )

    @property
    def features(self) -> int:
        """Numbers each coordinate sees: ``3 H + 1``."""
        return 3 * self.history_len + 1


# --------------------------------------------------------------------------- features


def tensor_features(
    grads: torch.Tensor, actions: torch.Tensor, objectives: torch.Tensor, action_clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-coordinate features of one tensor, without ``r``; and its scales ``s``.

    Args:
        grads: ``(H, n)`` gradient history, newest last.
        actions: ``(H, n)`` action history, newest last.
        objectives: ``(H,)`` objective history, newest last (the current value).
        action_clip: ``c``.

    Returns:
        ``(n, 3H)`` features ``[g_hat (H), d (H), u_hat (H)]`` and ``(n,)`` scales ``s``.
    """
    scale = grads.abs().amax(dim=0)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    g_hat = grads / safe
    delta = (objectives[-1] - objectives).to(torch.float64)
    largest = delta.abs().amax()
    d = delta / largest if bool(largest > 0) else torch.zeros_like(delta)
    # an infinite objective in the window: its own entry keeps its sign, the finite ones
    # become 0; a NaN objective reads as no change. Never a NaN feature.
    d = torch.nan_to_num(torch.where(torch.isinf(delta), torch.sign(delta), d), nan=0.0)
    d = d.to(grads.dtype)
    columns = grads.shape[1]
    features = torch.cat(
        [g_hat.T, d.unsqueeze(0).expand(columns, -1), (actions / action_clip).T], dim=1
    )
    return features, scale


def relative_scale(scales: torch.Tensor) -> torch.Tensor:
    """``r_i = clip(log10((s_i + eps) / (mean s + eps)) / 3, -1, 1)`` over all coordinates."""
    mean = scales.mean()
    ratio = (scales + SCALE_EPS) / (mean + SCALE_EPS)
    return torch.clamp(torch.log10(ratio) / RELATIVE_DECADES, -1.0, 1.0)


def coordinate_features(
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], action_clip: float
) -> torch.Tensor:
    """The ``(N, 3H + 1)`` float32 observation of all coordinates of several tensors.

    ``parts`` holds ``(grads (H, n_j), actions (H, n_j), objectives (H,))`` per tensor; the
    features of each are :func:`tensor_features`, then ``r`` is computed over all of them.
    """
    blocks, scales = [], []
    for grads, actions, objectives in parts:
        block, scale = tensor_features(grads, actions, objectives, action_clip)
        blocks.append(block)
        scales.append(scale)
    features = torch.cat(blocks, dim=0)
    r = relative_scale(torch.cat(scales))
    observation = torch.cat([features, r.unsqueeze(1)], dim=1).to(torch.float32)
    return torch.clamp(observation, -1.0, 1.0)


# --------------------------------------------------------------------------- network


class CoordinatewiseNet(nn.Module):
    """The shared per-coordinate network: ``(..., N, 3H+1)`` -> actions ``(..., N)``.

    ``mean(obs)``: the action means; ``value(obs)``: the value estimate from the mean over
    coordinates of the last hidden layer; ``log_std``: one exploration scale for all
    coordinates (so nothing depends on ``N``).
    """

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = nn.Sequential(
            nn.Linear(config.features, config.hidden),
            nn.Tanh(),
            nn.Linear(config.hidden, config.hidden),
            nn.Tanh(),
        )
        self.action_head = nn.Linear(config.hidden, 1)
        self.value_head = nn.Linear(config.hidden, 1)
        self.log_std = nn.Parameter(torch.full((1,), float(config.log_std_init)))
        with torch.no_grad():  # start near "do nothing", as PPO policies usually do
            self.action_head.weight.mul_(0.01)
            self.action_head.bias.zero_()

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """``(..., N, F)`` -> ``(..., N, hidden)``."""
        if obs.shape[-1] != self.config.features:
            raise InvalidValueError(
                f"CoordinatewiseNet: observation must have {self.config.features} features "
                f"per coordinate (3 * history_len + 1), got shape {tuple(obs.shape)}"
            )
        return self.encoder(obs)

    def mean_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Action means ``(..., N)`` from the encoded coordinates."""
        return self.action_head(hidden).squeeze(-1)

    def pooled(self, hidden: torch.Tensor) -> torch.Tensor:
        """The value head's input: the mean over coordinates, ``(..., hidden)``."""
        return hidden.mean(dim=-2)

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        """Action means ``(..., N)``."""
        return self.mean_from_hidden(self.encode(obs))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """Value estimates ``(..., 1)``."""
        return self.value_head(self.pooled(self.encode(obs)))

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action: the mean clipped to ``[-c, c]``."""
        clip = self.config.action_clip
        return torch.clamp(self.mean(obs), -clip, clip)


# --------------------------------------------------------------------------- policy files


@dataclass
class LearnedPolicy:
    """A loaded policy: its network (eval mode, no grad needed) and its config."""

    net: CoordinatewiseNet
    config: PolicyConfig
    source: str = "<memory>"

    @classmethod
    def fresh(cls, config: PolicyConfig | None = None, seed: int = 0) -> LearnedPolicy:
        """An untrained policy (weights from ``seed``; the global RNG is left alone)."""
        config = config or PolicyConfig()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = CoordinatewiseNet(config)
        return cls(net, config)


def save_policy(policy: LearnedPolicy, path: str | Path) -> Path:
    """Write ``policy`` to ``path`` (a ``torch.save`` dict; see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": asdict(policy.config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in policy.net.state_dict().items()},
    }
    # a fresh temporary file renamed into place: never writes through a link at either name
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(payload, handle)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    return path


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (names a policy in run records)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_policy(path: str | Path) -> LearnedPolicy:
    """Read a policy file; :class:`PolicyFileError` (one line) if missing, corrupt or
    mismatched (another format or version, a config or weights that do not fit)."""
    path = Path(path)
    try:
        present = path.is_file()
    except OSError as error:  # e.g. a name too long to look up
        raise PolicyFileError(f"policy file {path} cannot be read: {error.strerror}") from None
    if not present:
        raise PolicyFileError(f"policy file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds on a corrupt file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PolicyFileError(f"policy file {path} is not readable: {reason}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PolicyFileError(f"{path} is not an optlab learned-policy file (format {FORMAT!r})")
    if payload.get("version") != VERSION:
        raise PolicyFileError(
            f"policy file {path} has version {payload.get('version')!r}; this optlab reads "
            f"version {VERSION}"
        )
    raw = payload.get("config")
    known = {f.name for f in fields(PolicyConfig)}
    if not isinstance(raw, Mapping) or set(raw) != known:
        raise PolicyFileError(
            f"policy file {path}: config must have the keys {sorted(known)}, got "
            f"{sorted(raw) if isinstance(raw, Mapping) else raw!r}"
        )
    try:
        config = PolicyConfig(**raw)
    except (TypeError, ValueError) as error:
        raise PolicyFileError(f"policy file {path}: {error}") from None
    net = CoordinatewiseNet(config)
    state = payload.get("state_dict")
    expected = net.state_dict()
    if not isinstance(state, Mapping) or set(state) != set(expected):
        raise PolicyFileError(
            f"policy file {path}: weights must be {sorted(expected)}, got "
            f"{sorted(state) if isinstance(state, Mapping) else state!r}"
        )
    for key, tensor in expected.items():
        given = state[key]
        if not isinstance(given, torch.Tensor) or given.shape != tensor.shape:
            shape = tuple(given.shape) if isinstance(given, torch.Tensor) else type(given).__name__
            raise PolicyFileError(
                f"policy file {path}: weight {key} has shape {shape}, but its config "
                f"(history_len {config.history_len}, hidden {config.hidden}) needs "
                f"{tuple(tensor.shape)}"
            )
        if not bool(torch.isfinite(given).all()):
            raise PolicyFileError(f"policy file {path}: weight {key} is not finite")
    net.load_state_dict(state)
    net.eval()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return LearnedPolicy(net, config, source=str(path))


# --------------------------------------------------------------------------- optimizer


class Learned(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` driven by a trained coordinate-wise policy.

    Args:
        params: parameters or parameter groups.
        policy: a policy file path or a :class:`LearnedPolicy`.
        lr: the step scale ``eta`` (default: the one the policy was trained with).

    ``step(closure)`` needs the closure (it returns the loss the policy observes). See the
    module docstring for the rule and the state.
    """

    def __init__(
        self, params: ParamsT, policy: str | Path | LearnedPolicy, lr: float | None = None
    ) -> None:
        if isinstance(policy, (str, Path)):
            policy = load_policy(policy)
        elif not isinstance(policy, LearnedPolicy):
            raise InvalidTypeError(
                f"Learned: policy must be a policy file path or a LearnedPolicy, got "
                f"{type(policy).__name__}"
            )
        lr = policy.config.lr if lr is None else check_learning_rate("Learned", lr)
        self.policy = policy
        super().__init__(params, {"lr": lr})

    def __getstate__(self) -> dict[str, Any]:
        # torch's keeps defaults, state and param_groups only: the policy must travel too
        # (deepcopy, pickling).
        state = super().__getstate__()
        state["policy"] = self.policy
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict``, then a check that every stored history has this
        policy's length (a state saved under another policy fails here, in one line)."""
        super().load_state_dict(state_dict)
        length = self.policy.config.history_len
        for state in self.state.values():
            history = state.get("grad_history")
            if isinstance(history, torch.Tensor) and history.shape[0] != length:
                self.state.clear()
                raise InvalidValueError(
                    f"Learned.load_state_dict: the state holds histories of "
                    f"{history.shape[0]} steps, this policy reads history_len={length}"
                )

    def _histories(self, param: torch.Tensor, objective: float) -> dict[str, Any]:
        state = self.state[param]
        if not state:
            length = self.policy.config.history_len
            shape = (length, param.numel())
            state["step"] = 0
            state["grad_history"] = torch.zeros(shape, dtype=param.dtype, device=param.device)
            state["action_history"] = torch.zeros(shape, dtype=param.dtype, device=param.device)
            # at least float32: a loss above float16's range, or rounded by bfloat16,
            # would corrupt the objective features
            state["objective_history"] = torch.full(
                (length,),
                objective,
                dtype=torch.promote_types(param.dtype, torch.float32),
                device=param.device,
            )
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One update; ``closure`` (required) re-evaluates the model and returns the loss."""
        if closure is None:
            raise UnsupportedError(
                "Learned.step needs a closure that computes the loss and its gradients "
                "(the policy observes the objective), as torch.optim.LBFGS does"
            )
        with torch.enable_grad():
            loss = closure()
        try:
            objective = float(torch.as_tensor(loss).detach())
        except (TypeError, ValueError, RuntimeError):
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise InvalidTypeError(
                "Learned.step: the closure must return the loss as a number or a one-element "
                f"tensor, got {shape}"
            ) from None
        entries = []
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise UnsupportedError("Learned does not support sparse gradients")
                state = self._histories(param, objective)
                grads, objectives = state["grad_history"], state["objective_history"]
                grads.copy_(torch.roll(grads, -1, dims=0))
                grads[-1].copy_(param.grad.reshape(-1))
                objectives.copy_(torch.roll(objectives, -1, dims=0))
                objectives[-1] = objective
                entries.append((group, param, state))
        if not entries:
            return loss
        net = self.policy.net
        features = coordinate_features(
            [
                (s["grad_history"], s["action_history"], s["objective_history"])
                for _, _, s in entries
            ],
            self.policy.config.action_clip,
        )
        features = features.to(next(net.parameters()).device)
        actions = net.act(features)
        start = 0
        for group, param, state in entries:
            count = param.numel()
            action = actions[start : start + count].to(device=param.device, dtype=param.dtype)
            start += count
            updates = state["action_history"]
            updates.copy_(torch.roll(updates, -1, dims=0))
            updates[-1].copy_(action)
            param.add_(action.reshape(param.shape), alpha=float(group["lr"]))
            state["step"] += 1
        return loss
