"""Shared fixtures: seeded factories of event-model batches."""

from __future__ import annotations

import os
from collections.abc import Callable

import awkward as ak
import numpy as np
import pytest
from hypothesis import settings

# numba compiles on a kernel's first call: no per-example deadline. In CI the examples are
# derandomised, so a run's result never depends on the draw.
settings.register_profile("lamarr", deadline=None, print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("lamarr"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "lamarr")

from lamarr_col.event import make_batch

_SPECIES = np.array([211, -211, 321, -321, 2212, 22, 11, 13, 130, 310])


def build_batch(seed: int, n_events: int = 5, first_event: int = 0, mean: float = 4.0) -> ak.Array:
    """A random but reproducible batch with mother links and end vertices."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(mean, n_events)
    n = int(counts.sum())
    pid = rng.choice(_SPECIES, n)
    mass = np.array([139.57, 139.57, 493.677, 493.677, 938.272, 0.0, 0.511, 105.66, 497.6, 497.6])[
        np.searchsorted(np.sort(_SPECIES), pid).clip(0, 9)
    ]
    px, py = rng.normal(0, 500, (2, n))
    pz = rng.exponential(20_000, n)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    local = np.arange(n) - starts
    mother = np.where((local > 0) & (rng.random(n) < 0.3), local - 1, -1)
    decayed = np.isin(np.arange(n), (starts + mother)[mother >= 0])
    end = np.where(decayed, rng.normal(0, 10, n), np.nan)
    return make_batch(
        run=7,
        event=np.arange(first_event, first_event + n_events),
        n_collisions=np.ones(n_events),
        counts=counts,
        particles={
            "pid": pid,
            "mass": mass,
            "px": px,
            "py": py,
            "pz": pz,
            "e": np.sqrt(px**2 + py**2 + pz**2 + mass**2),
            "vx": rng.normal(0, 0.035, n),
            "vy": rng.normal(0, 0.035, n),
            "vz": rng.normal(0, 60, n),
            "vt": rng.normal(0, 0.18, n),
            "end_vx": end,
            "end_vy": end,
            "end_vz": end,
            "end_vt": end,
            "mother": mother,
            "status": np.where(decayed, 2, 1),
            "collision": np.zeros(n),
        },
    )


@pytest.fixture
def batch_factory() -> Callable[..., ak.Array]:
    return build_batch
