"""What every event source provides: batches of events in the event model, and its statistics."""

from __future__ import annotations

import abc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import awkward as ak

__all__ = ["Source", "SourceStats"]


@dataclass
class SourceStats:
    """Running counts a source keeps for the run summary."""

    events: int = 0
    particles: int = 0
    unknown_pids: Counter[int] = field(default_factory=Counter)

    def add_batch(self, batch: ak.Array, unknown: Counter[int] | None = None) -> None:
        self.events += len(batch)
        self.particles += int(ak.sum(ak.num(batch.mcparticles, axis=1)))
        if unknown:
            self.unknown_pids.update(unknown)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "particles": self.particles,
            "unknown_pids_dropped": {str(k): v for k, v in sorted(self.unknown_pids.items())},
        }


class Source(abc.ABC):
    """A stream of events.

    Generators (gun, Pythia) draw every random number from the run ``seed`` keyed by event
    number, so the events do not depend on ``batch_size``. File readers ignore ``seed``.
    ``n_events=None`` reads a file to its end; generators require a number.
    """

    kind: ClassVar[str]
    #: Batch size used when the caller gives none (memory per batch stays around 100 MB).
    default_batch_size: ClassVar[int] = 1000

    def __init__(self) -> None:
        self.stats = SourceStats()

    @abc.abstractmethod
    def batches(
        self,
        n_events: int | None,
        batch_size: int,
        *,
        seed: int = 0,
        run: int = 0,
        first_event: int = 0,
    ) -> Iterator[ak.Array]:
        """Yield batches of at most ``batch_size`` events."""

    @abc.abstractmethod
    def metadata(self) -> dict[str, Any]:
        """JSON-serialisable description of the source and its settings (stored in outputs)."""

    @staticmethod
    def _check_counts(n_events: int | None, batch_size: int, *, needs_count: bool) -> None:
        if needs_count and n_events is None:
            msg = "a generator needs a number of events"
            raise ValueError(msg)
        if n_events is not None and n_events < 1:
            msg = f"number of events must be at least 1, got {n_events}"
            raise ValueError(msg)
        if batch_size < 1:
            msg = f"batch size must be at least 1, got {batch_size}"
            raise ValueError(msg)

    @staticmethod
    def _ranges(first_event: int, n_events: int, batch_size: int) -> Iterator[range]:
        for start in range(first_event, first_event + n_events, batch_size):
            yield range(start, min(start + batch_size, first_event + n_events))
