"""The LHCb-like detector: condition sets, geometry, material, field map.

``load_conditions("lhcb-run3", "MagDown")`` gives a :class:`ConditionSet`; its ``planes()`` are
the flat arrays the kernels read, ``describe()`` a printable summary. See ``docs/detector.md``.
"""

from lamarr_col.detector.calo_grid import CaloGrid
from lamarr_col.detector.conditions import (
    GROUPS,
    PLANE_FIELDS,
    Absorber,
    CaloRegion,
    Calorimeter,
    ConditionSet,
    Layer,
    Magnet,
    MuonStation,
    Rich,
    RichRadiator,
    Tracker,
)
from lamarr_col.detector.describe import describe
from lamarr_col.detector.field import POLARITIES, FieldMap
from lamarr_col.detector.load import (
    DEFAULT_CONDITIONS,
    available_conditions,
    load_conditions,
    single_kick_toml,
)

__all__ = [
    "DEFAULT_CONDITIONS",
    "GROUPS",
    "PLANE_FIELDS",
    "POLARITIES",
    "Absorber",
    "CaloGrid",
    "CaloRegion",
    "Calorimeter",
    "ConditionSet",
    "FieldMap",
    "Layer",
    "Magnet",
    "MuonStation",
    "Rich",
    "RichRadiator",
    "Tracker",
    "available_conditions",
    "describe",
    "load_conditions",
    "single_kick_toml",
]
