"""Peers-per-iteration schedules by epoch (denser graphs early in training, Sec. 6 of Assran et al. 2019)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PeersSchedule:
    """Number of out-peers each node uses per iteration, as a step function of the epoch.

    ``milestones`` maps a starting epoch to the number of peers from that epoch on; epoch 0 must
    be present. ``PeersSchedule({0: 2, 30: 1})`` uses two peers for epochs 0-29, one after.
    """

    milestones: Mapping[int, int] = field(default_factory=lambda: {0: 1})

    def __post_init__(self) -> None:
        ms = {int(k): int(v) for k, v in dict(self.milestones).items()}
        if 0 not in ms:
            raise ValueError(
                f"topology.peers_schedule={ms}: the schedule must start at epoch 0; add 0: <peers>"
            )
        for epoch, peers in ms.items():
            if epoch < 0 or peers < 1:
                raise ValueError(
                    f"topology.peers_schedule={ms}: epochs must be >= 0 and peers >= 1; "
                    f"got {epoch}: {peers}"
                )
        object.__setattr__(self, "milestones", dict(sorted(ms.items())))

    @classmethod
    def constant(cls, peers: int) -> PeersSchedule:
        return cls({0: peers})

    def peers_at(self, epoch: float) -> int:
        """Peers per iteration during ``epoch`` (fractional epochs allowed)."""
        current = self.milestones[0]
        for start, peers in self.milestones.items():
            if epoch >= start:
                current = peers
        return current

    @property
    def max_peers(self) -> int:
        return max(self.milestones.values())
