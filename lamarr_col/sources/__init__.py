"""Event sources: particle gun, Pythia8, HepMC2/3 files and generator-level ROOT/Parquet ntuples.

Each source streams batches of events in the event model (:class:`Source`). The classes are
imported on first use, so ``import lamarr_col`` does not load Pythia or pyhepmc.
"""

from __future__ import annotations

import importlib
from typing import Any

from lamarr_col.sources.base import Source, SourceStats
from lamarr_col.sources.beam import LuminousRegion, PileUp
from lamarr_col.sources.open import open_source

__all__ = [
    "ColumnMap",
    "HepMCSource",
    "LuminousRegion",
    "NtupleSource",
    "ParticleGun",
    "PileUp",
    "PythiaSource",
    "Source",
    "SourceStats",
    "open_source",
]

_LAZY = {
    "ColumnMap": "lamarr_col.sources.ntuple",
    "NtupleSource": "lamarr_col.sources.ntuple",
    "HepMCSource": "lamarr_col.sources.hepmc",
    "ParticleGun": "lamarr_col.sources.gun",
    "PythiaSource": "lamarr_col.sources.pythia",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(__all__)
