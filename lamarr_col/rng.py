"""Counter-based random numbers keyed per event.

Every random number is a pure function of ``(seed, stream, event number, counter)``: a
SplitMix64-style hash chain turns the four integers into 64 random bits. An event therefore gets
the same numbers whatever the batch size, the batch order or the number of workers, and steps do
not share numbers because each has its own ``stream`` id (listed in :data:`STREAMS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["STREAMS", "EventKeys", "box_muller", "poisson_from_uniform"]

#: One stream id per consumer of randomness. Never reuse or renumber an id: it changes outputs.
STREAMS: Final = MappingProxyType(
    {
        "pileup": 1,
        "luminous_region": 2,
        "pythia": 3,
        "gun": 4,
        "gun_decay": 5,
        "pv": 6,
        "decay_in_flight": 7,
        "transport": 8,
        "hits": 9,
        "conversion": 10,
        "muon": 11,
        "rich": 12,
        "ecal": 13,
    }
)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64 finaliser (a bijection of uint64 with good avalanche)."""
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _u64(values: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    arr = np.asarray(values)
    if arr.dtype.kind == "i":
        arr = arr.astype(np.int64).view(np.uint64)
    return np.atleast_1d(arr.astype(np.uint64, copy=False))


@dataclass(frozen=True)
class EventKeys:
    """Random numbers of one run, addressed by (stream, event, counter)."""

    seed: int

    def bits(
        self, stream: str, events: npt.ArrayLike, counters: npt.ArrayLike
    ) -> npt.NDArray[np.uint64]:
        """64 random bits per (event, counter) pair; the arrays broadcast."""
        with np.errstate(over="ignore"):
            base = _mix(_mix(_u64(self.seed)) ^ _u64(STREAMS[stream]))
            key = _mix(base ^ _u64(events))
            return _mix(key ^ _mix(_u64(counters)))

    def uniform(
        self, stream: str, events: npt.ArrayLike, counters: npt.ArrayLike
    ) -> npt.NDArray[np.float64]:
        """Uniform numbers in the open interval (0, 1)."""
        b = self.bits(stream, events, counters)
        return (b >> _S11).astype(np.float64) * 2.0**-53 + 2.0**-54

    def normal(
        self, stream: str, events: npt.ArrayLike, counters: npt.ArrayLike
    ) -> npt.NDArray[np.float64]:
        """Standard normal numbers (Box–Muller on counters 2c and 2c+1)."""
        c = _u64(counters) * np.uint64(2)
        u1 = self.uniform(stream, events, c)
        u2 = self.uniform(stream, events, c + np.uint64(1))
        return box_muller(u1, u2)[0]

    def poisson(
        self, stream: str, events: npt.ArrayLike, counters: npt.ArrayLike, mean: float
    ) -> npt.NDArray[np.int64]:
        """Poisson numbers of the given mean."""
        return poisson_from_uniform(self.uniform(stream, events, counters), mean)

    def integer_seed(self, stream: str, event: int, counter: int, high: int = 900_000_000) -> int:
        """A seed in [1, high] for an external generator (Pythia accepts up to 900 000 000).

        A bijection of ``n_counters · event + counter`` (with ``counter < 2``) onto [0, high),
        keyed by (run seed, stream): within one run no two (event, counter) pairs share a seed
        for the first ``high / 2`` events. Different run seeds give unrelated permutations, so
        their seeds coincide only by chance; a production should use one seed and disjoint
        event ranges.
        """
        if not 0 <= counter < 2:
            msg = f"counter must be 0 or 1, got {counter}"
            raise ValueError(msg)
        if not 0 <= event < high // 2:
            msg = f"event number {event} is beyond the {high // 2} distinct external seeds"
            raise ValueError(msg)
        key = int(self.bits(stream, 0, 0)[0])
        # multiplier coprime with high (900e6 = 2^8 3^2 5^8): odd, not a multiple of 3 or 5
        a = (key >> 32) % high
        while a % 2 == 0 or a % 3 == 0 or a % 5 == 0:
            a += 1
        b = key % high
        return (a * (2 * event + counter) + b) % high + 1


def box_muller(
    u1: npt.NDArray[np.float64], u2: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Two independent standard normals from two uniforms in (0, 1) (Box–Muller)."""
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    return radius * np.cos(angle), radius * np.sin(angle)


def poisson_from_uniform(
    u: npt.NDArray[np.float64], mean: float | npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Invert the Poisson CDF at ``u``; ``mean`` is one number or one per entry (below 700)."""
    means = np.broadcast_to(np.asarray(mean, dtype=np.float64), np.shape(u))
    if not (np.all(np.isfinite(means)) and np.all(means >= 0) and np.all(means < 700)):
        msg = f"Poisson mean must be in [0, 700), got {mean}"
        raise ValueError(msg)
    k = np.zeros(np.shape(u), dtype=np.int64)
    term = np.exp(-means)
    cdf = term.copy()
    active = u > cdf
    n = 0
    while active.any() and n < 10_000:
        n += 1
        term = term * means / n
        cdf = cdf + term
        k[active] = n
        active &= u > cdf
    return k
