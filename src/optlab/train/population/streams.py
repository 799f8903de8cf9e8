"""The data order of a population: one shared batch stream, or one per member.

Members share each mini-batch by default (the same data order, seeded by ``data_seed``), so
member i follows exactly the trajectory a lone model from init seed i would; with
``data_order="per-member"`` each member draws its own seeded order (:class:`MemberBatches`),
stacked along the population axis. Both streams are the training core's
(:class:`optlab.train.core.BatchStream`), so a lone model draws the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from optlab.problems.base import Batch, ProblemInstance
from optlab.train.core import BatchStream

DATA_ORDERS = ("shared", "per-member")
"""How members draw mini-batches: the same stream for all, or one each."""


class MemberBatches:
    """One :class:`BatchStream` per member, each with its own data-order seed, stacked
    along a leading population axis (``Population.losses(batch, per_member=True)``);
    :meth:`keep` follows the survivors, :meth:`state` / :meth:`restore` resume."""

    def __init__(self, instance: ProblemInstance, seeds: Sequence[int]) -> None:
        self.seeds = [int(seed) for seed in seeds]
        self.streams = [BatchStream(instance, seed) for seed in self.seeds]

    def __iter__(self) -> MemberBatches:
        return self

    def __next__(self) -> Batch:
        batches = [next(stream) for stream in self.streams]
        inputs = torch.stack([batch[0] for batch in batches])  # type: ignore[index]
        targets = torch.stack([batch[1] for batch in batches])  # type: ignore[index]
        return inputs, targets

    def keep(self, members: Sequence[int]) -> None:
        """Keep the streams of ``members`` (indices into the current population)."""
        self.seeds = [self.seeds[i] for i in members]
        self.streams = [self.streams[i] for i in members]

    def state(self) -> dict[str, Any]:
        """The member seeds and every stream's :meth:`BatchStream.state`."""
        return {"seeds": list(self.seeds), "streams": [s.state() for s in self.streams]}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state` (one saved stream per member)."""
        if len(state["streams"]) != len(self.streams):
            raise ValueError(f"{len(state['streams'])} batch streams for {len(self.streams)}")
        for stream, saved in zip(self.streams, state["streams"], strict=True):
            stream.restore(saved)


def draws_per_member(instance: ProblemInstance, data_order: str) -> bool:
    """Whether members draw their own batches: ``data_order`` asks for it, and the problem
    has mini-batches (full-batch and analytic problems have one order either way)."""
    if data_order != "per-member" or instance.data is None:
        return False
    rows = len(instance.data.train[0])
    return instance.batch_size is not None and instance.batch_size < rows


def make_batches(
    instance: ProblemInstance, data_order: str, data_seed: int, members: int, saved: Any = None
) -> BatchStream | MemberBatches:
    """The batch stream of a population run of ``members`` (shared: seeded by
    ``data_seed``; per member: member i by ``data_seed + i``), restored from ``saved``."""
    if not draws_per_member(instance, data_order):
        stream: BatchStream | MemberBatches = BatchStream(instance, data_seed)
    elif saved is not None:
        stream = MemberBatches(instance, saved["seeds"])
    else:
        stream = MemberBatches(instance, [data_seed + i for i in range(members)])
    if saved is not None:
        stream.restore(saved)
    return stream
