"""Wall time per stage of the detailed chain (the ``timings`` dictionaries of its steps)."""

from __future__ import annotations

import time

__all__ = ["StageClock"]


class StageClock:
    """Adds the time since the previous call to ``timings[stage]`` (no-op without a dict)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.last
        self.last = now
