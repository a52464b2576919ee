"""Embedding gun particles into generated crossings: calibration samples at real occupancy.

Species that minimum bias makes rarely (muons above all) are needed in numbers to calibrate
and train the particle identification, at the occupancy the identification sees. LHCb uses
tag-and-probe calibration samples; here the simulation knows the truth, so gun particles are
simply added to each crossing, as one more collision (``collision`` = the crossing's
``n_collisions``) from the gun's own vertex. :func:`embed` appends them to ``mcparticles`` with
their ``mother`` links shifted; the crossing's own particles keep their indices.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from lamarr_col.event.schema import MCPARTICLE_FIELDS
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

__all__ = ["embed"]


def embed(events: ak.Array, gun: ParticleGun, *, seed: int) -> ak.Array:
    """``events`` with the particles ``gun`` makes for the same event numbers appended to
    each event's ``mcparticles`` (a new array; ``n_collisions`` counts the gun as one)."""
    numbers = ak.to_numpy(events["event"]).astype(np.uint64)
    extra = gun.generate(EventKeys(seed), numbers).mcparticles
    base = ak.num(events.mcparticles, axis=1)
    fields = list(MCPARTICLE_FIELDS)
    mother = ak.where(extra.mother >= 0, extra.mother + base, extra.mother)
    collision = ak.ones_like(extra.collision) * events["n_collisions"]
    extra = ak.with_field(extra, ak.values_astype(mother, np.int32), "mother")
    extra = ak.with_field(extra, ak.values_astype(collision, np.int32), "collision")
    merged = ak.concatenate([events.mcparticles[fields], extra[fields]], axis=1)
    out = ak.with_field(events, merged, "mcparticles")
    return ak.with_field(out, events["n_collisions"] + 1, "n_collisions")
