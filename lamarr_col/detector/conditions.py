"""The detector of one condition set as immutable data, and its planes as flat arrays.

A :class:`ConditionSet` is built from TOML package data by :func:`lamarr_col.detector.load_conditions`
(see ``docs/detector.md`` for the sets, their sources and the file schema). Units: mm, T, MeV;
material as fractions of a radiation length (x/X0) and of a nuclear interaction length (x/λI).

:meth:`ConditionSet.planes` flattens everything acceptance and transport need into one contiguous
array per property, one entry per plane, sorted by z, for numba kernels. A point (x, y) is inside
plane i when ``|x| <= x_max[i]``, ``|y| <= y_max[i]``, ``r_min[i] <= √(x²+y²) <= r_max[i]`` and
not ``(|x| < hole_x[i] and |y| < hole_y[i])``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from lamarr_col.detector.field import FieldMap
from lamarr_col.sources.beam import LuminousRegion, PileUp

__all__ = [
    "GROUPS",
    "PLANE_FIELDS",
    "Absorber",
    "CaloRegion",
    "Calorimeter",
    "ConditionSet",
    "Layer",
    "Magnet",
    "MuonId",
    "MuonStation",
    "RfFoil",
    "Rich",
    "RichRadiator",
    "Tracker",
]

#: Integer code of each plane group in ``planes()["group"]`` (numbered in z order).
#: TT (Run 1–2) shares the UT code; M1–M5 are all MUON (``planes()["station"]`` tells them apart);
#: ABSORBER is the iron filters between muon stations.
GROUPS: Mapping[str, int] = MappingProxyType(
    {
        "VELO": 0,
        "RICH1": 1,
        "UT": 2,
        "MAGNET": 3,
        "T": 4,
        "RICH2": 5,
        "ECAL": 6,
        "HCAL": 7,
        "MUON": 8,
        "ABSORBER": 9,
    }
)

#: Tracking groups a ``[tracking.NAME]`` sub-detector may belong to.
TRACKING_GROUPS = ("VELO", "UT", "T")

#: The float64 arrays of ``planes()`` (the integer ones are ``group`` and ``station``, the
#: boolean one ``measures``).
PLANE_FIELDS = (
    "z",
    "x_max",
    "y_max",
    "r_min",
    "r_max",
    "hole_x",
    "hole_y",
    "x0",
    "lambda_i",
    "resolution",
    "efficiency",
    "stereo",
)

# PDG (2024) properties of iron, for the muon filters: X0 and λI in mm.
IRON_X0_MM = 17.57
IRON_LAMBDA_I_MM = 167.7
# PDG (2024) properties of aluminium, for the RF foil (an Al–Mg alloy): X0 and λI in mm.
ALUMINIUM_X0_MM = 88.97
ALUMINIUM_LAMBDA_I_MM = 397.0


@dataclass(frozen=True)
class Layer:
    """One tracking plane: position (mm), active area, beam hole, material, hit response.

    ``x_max``/``y_max`` are outer half sizes, ``r_min``/``r_max`` a radius range (0/inf when
    unused), ``hole_x``/``hole_y`` a rectangular beam hole (0 when none); ``stereo`` is the
    strip angle to the y axis in degrees; ``resolution`` the single-hit resolution (mm);
    ``station`` the tracking station (1–3 for T1–T3 layers, −1 when not grouped in stations).
    """

    name: str
    z: float
    x_max: float = math.inf
    y_max: float = math.inf
    r_min: float = 0.0
    r_max: float = math.inf
    hole_x: float = 0.0
    hole_y: float = 0.0
    x0: float = 0.0
    lambda_i: float = 0.0
    resolution: float = 0.0
    efficiency: float = 1.0
    stereo: float = 0.0
    station: int = -1


@dataclass(frozen=True)
class Tracker:
    """A tracking sub-detector (VELO, UT/TT, SciFi, IT, OT, or a user's) and its layers."""

    name: str
    group: str
    layers: tuple[Layer, ...]
    description: str = ""


@dataclass(frozen=True)
class RichRadiator:
    """A Cherenkov radiator: medium, refractive index n, z range and track length (mm)."""

    name: str
    medium: str
    n: float
    z_min: float
    z_max: float
    length: float
    #: mean detected photoelectrons of a β = 1 track crossing ``length`` (0: not read out)
    photoelectrons: float = 0.0
    #: Cherenkov-angle resolution per detected photon (rad)
    resolution: float = 0.0

    def threshold(self, mass: float) -> float:
        """Momentum threshold (MeV) for a particle of ``mass`` (MeV): m / √(n² − 1)."""
        return mass / math.sqrt(self.n**2 - 1.0)


@dataclass(frozen=True)
class Rich:
    """A RICH detector: vessel z range (mm), angular acceptance (rad), total material."""

    name: str
    z_min: float
    z_max: float
    tx_min: float
    ty_min: float
    tx_max: float
    ty_max: float
    x0: float
    lambda_i: float
    radiators: tuple[RichRadiator, ...]
    #: mean photodetector noise hits per bunch crossing, uniform over the detector plane
    noise: float = 0.0
    #: regions of about equal area that the reconstruction estimates the background of the
    #: photodetector plane in (LHCb: one per photodetector); 1 for a flat background
    background_regions: int = 1


@dataclass(frozen=True)
class CaloRegion:
    """A calorimeter region of square cells of side ``cell`` inside ±x_max × ±y_max (mm)."""

    name: str
    cell: float
    x_max: float
    y_max: float


@dataclass(frozen=True)
class Calorimeter:
    """ECAL or HCAL: front face and shower-maximum z, depth (mm), material, area, regions.

    Regions are nested rectangles from the inside out; a region covers its rectangle minus the
    previous one (the first one minus the beam hole). Energy resolution
    σE/E = stochastic/√(E/GeV) ⊕ constant.
    """

    name: str
    z_front: float
    z_shower_max: float
    depth: float
    x0: float
    lambda_i: float
    x_max: float
    y_max: float
    hole_x: float
    hole_y: float
    regions: tuple[CaloRegion, ...]
    stochastic: float
    constant: float
    moliere_radius: float = 0.0
    #: read-out: cell noise (σ) and read-out threshold on the transverse-energy scale, and
    #: the smallest transverse energy of a cluster seed (MeV); 0 where not simulated
    noise_et: float = 0.0
    digit_et_min: float = 0.0
    seed_et_min: float = 0.0

    def cell_counts(self) -> dict[str, float]:
        """Number of cell positions per region (area / cell²), a check of the geometry."""
        out: dict[str, float] = {}
        inner_x, inner_y = self.hole_x, self.hole_y
        for region in self.regions:
            area = 4.0 * (region.x_max * region.y_max - inner_x * inner_y)
            out[region.name] = area / region.cell**2
            inner_x, inner_y = region.x_max, region.y_max
        return out


@dataclass(frozen=True)
class MuonStation:
    """A muon station: z, index (1 for M1 …), area and beam hole (mm), logical pads per region.

    Regions R1…R4 are nested rectangles with half sizes ``region_fractions`` × (x_max, y_max);
    ``pad_x[k]``/``pad_y[k]`` are the logical pad sizes (mm) in region k.
    """

    name: str
    index: int
    z: float
    x_max: float
    y_max: float
    hole_x: float
    hole_y: float
    pad_x: tuple[float, ...]
    pad_y: tuple[float, ...]
    region_fractions: tuple[float, ...]
    x0: float
    lambda_i: float
    resolution: float
    efficiency: float
    #: uncorrelated hits per cm² and bunch crossing in each region, per 100 reconstructed
    #: tracks in the event (empty: none)
    background: tuple[float, ...] = ()


@dataclass(frozen=True)
class MuonId:
    """Muon identification settings (``[muon.id]``): the field of interest around the track's
    extrapolation is ``max(foi_sigma · σ, foi_min_pads · pad)`` per station and coordinate (σ:
    multiple scattering and pad resolution); hadron showers leak ``punch_yield`` particles per
    GeV times exp(−Λ/``punch_attenuation``) behind Λ interaction lengths, spread by
    ``punch_spread`` mm about the hadron's line."""

    foi_sigma: float = 3.0
    foi_min_pads: float = 1.0
    punch_yield: float = 0.0
    punch_attenuation: float = 1.0
    punch_spread: float = 100.0


@dataclass(frozen=True)
class Absorber:
    """An iron muon filter of ``thickness`` mm lumped onto the plane at z (its centre)."""

    name: str
    z: float
    thickness: float
    x_max: float
    y_max: float
    hole_x: float
    hole_y: float

    @property
    def x0(self) -> float:
        return self.thickness / IRON_X0_MM

    @property
    def lambda_i(self) -> float:
        return self.thickness / IRON_LAMBDA_I_MM


@dataclass(frozen=True)
class RfFoil:
    """The VELO's RF foil as a cylindrical aluminium wall about the beam (mm): inner ``radius``,
    wall ``thickness``, from ``z_min`` to ``z_max``. How particles cross it:
    :mod:`lamarr_col.kernels.foil`."""

    radius: float
    thickness: float
    z_min: float
    z_max: float

    @property
    def x0(self) -> float:
        """x/X0 of the wall at normal incidence."""
        return self.thickness / ALUMINIUM_X0_MM

    @property
    def lambda_i(self) -> float:
        """x/λI of the wall at normal incidence."""
        return self.thickness / ALUMINIUM_LAMBDA_I_MM

    def as_array(self) -> npt.NDArray[np.float64]:
        """The kernels' ``foil`` array (``lamarr_col.kernels.foil.FOIL_FIELDS``)."""
        values = (self.radius, self.z_min, self.z_max, self.thickness, self.x0, self.lambda_i)
        return np.array(values, dtype=np.float64)


@dataclass(frozen=True)
class Magnet:
    """The dipole: where its field came from and its aperture planes (z in mm, slopes in rad).

    The half-apertures at a plane are ``tx_max·z`` and ``ty_max·z``, projected from the origin.
    """

    source: str
    parameters: Mapping[str, float]
    z_entrance: float
    z_exit: float
    tx_max: float
    ty_max: float


@dataclass(frozen=True, eq=False)
class ConditionSet:
    """The detector of one condition set and magnet polarity (see the module docstring)."""

    name: str
    polarity: str
    field: FieldMap
    magnet: Magnet
    trackers: tuple[Tracker, ...]
    riches: tuple[Rich, ...]
    ecal: Calorimeter
    hcal: Calorimeter
    muon_stations: tuple[MuonStation, ...]
    absorbers: tuple[Absorber, ...]
    luminous_region: LuminousRegion
    pileup: PileUp
    single_kick: Mapping[str, tuple[float, ...]] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )
    rf_foil: RfFoil | None = None
    muon_id: MuonId = dataclasses.field(default_factory=MuonId)
    #: Resolutions of the VELO–T matching residuals, ``"dx"``, ``"dy"`` (mm), ``"dty"`` (rad):
    #: (a, b, c) of σ(p) = √(a² + (b/p)² + (c/p²)²), p in GeV (lamarr_col.detailed.matching)
    matching: Mapping[str, tuple[float, float, float]] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )
    description: str = ""
    source: str = ""

    def tracker(self, name: str) -> Tracker:
        """The tracking sub-detector called ``name`` (KeyError listing the names otherwise)."""
        for t in self.trackers:
            if t.name == name:
                return t
        msg = f"no tracker {name!r} in {self.name}; have {', '.join(t.name for t in self.trackers)}"
        raise KeyError(msg)

    def _plane_rows(self) -> list[tuple[str, dict[str, float], int, int, bool]]:
        rows: list[tuple[str, dict[str, float], int, int, bool]] = []
        for t in self.trackers:
            for layer in t.layers:
                values = {k: float(getattr(layer, k)) for k in PLANE_FIELDS}
                values["stereo"] = math.radians(layer.stereo)
                row = (f"{t.name}/{layer.name}", values, GROUPS[t.group], layer.station, True)
                rows.append(row)
        m = self.magnet
        for label, z in (("entrance", m.z_entrance), ("exit", m.z_exit)):
            values = _passive(z, m.tx_max * z, m.ty_max * z)
            rows.append((f"MAGNET/{label}", values, GROUPS["MAGNET"], -1, False))
        for rich in self.riches:
            # the material is split evenly between the entrance and the exit plane
            for label, z in (("entrance", rich.z_min), ("exit", rich.z_max)):
                values = _passive(z, rich.tx_max * z, rich.ty_max * z)
                values.update(
                    hole_x=rich.tx_min * z,
                    hole_y=rich.ty_min * z,
                    x0=rich.x0 / 2,
                    lambda_i=rich.lambda_i / 2,
                )
                rows.append((f"{rich.name}/{label}", values, GROUPS[rich.name], -1, False))
        for calo in (self.ecal, self.hcal):
            values = _passive(calo.z_front, calo.x_max, calo.y_max)
            values.update(hole_x=calo.hole_x, hole_y=calo.hole_y, x0=calo.x0)
            values["lambda_i"] = calo.lambda_i
            rows.append((f"{calo.name}/front", values, GROUPS[calo.name], -1, False))
            if calo.name == "ECAL":
                values = dict(values, z=calo.z_shower_max, x0=0.0, lambda_i=0.0)
                rows.append((f"{calo.name}/shower_max", values, GROUPS[calo.name], -1, False))
        for s in self.muon_stations:
            values = _passive(s.z, s.x_max, s.y_max)
            values.update(
                hole_x=s.hole_x,
                hole_y=s.hole_y,
                x0=s.x0,
                lambda_i=s.lambda_i,
                resolution=s.resolution,
                efficiency=s.efficiency,
            )
            rows.append((s.name, values, GROUPS["MUON"], s.index, True))
        for a in self.absorbers:
            values = _passive(a.z, a.x_max, a.y_max)
            values.update(hole_x=a.hole_x, hole_y=a.hole_y, x0=a.x0, lambda_i=a.lambda_i)
            rows.append((f"ABSORBER/{a.name}", values, GROUPS["ABSORBER"], -1, False))
        # stable sort on z: equal z keep the order above (tracking before passive planes)
        rows.sort(key=lambda row: row[1]["z"])
        return rows

    def planes(self) -> dict[str, npt.NDArray[np.generic]]:
        """Every plane as flat contiguous arrays, one entry per plane, sorted by z.

        float64: ``z``, ``x_max``, ``y_max``, ``r_min``, ``r_max``, ``hole_x``, ``hole_y`` (mm),
        ``x0`` (x/X0), ``lambda_i`` (x/λI), ``resolution`` (mm; 0 for planes without hits),
        ``efficiency`` (hit efficiency; 1 for passive planes), ``stereo`` (rad);
        int32: ``group`` (a :data:`GROUPS` code), ``station`` (1–5 for the muon stations M1–M5,
        1–3 for the T stations T1–T3 of T-group layers, −1 elsewhere);
        bool: ``measures`` (the plane records hits: tracking layers and muon stations).
        """
        rows = self._plane_rows()
        out: dict[str, npt.NDArray[np.generic]] = {
            k: np.ascontiguousarray([r[1][k] for r in rows], dtype=np.float64) for k in PLANE_FIELDS
        }
        out["group"] = np.ascontiguousarray([r[2] for r in rows], dtype=np.int32)
        out["station"] = np.ascontiguousarray([r[3] for r in rows], dtype=np.int32)
        out["measures"] = np.ascontiguousarray([r[4] for r in rows], dtype=np.bool_)
        return out

    def plane_names(self) -> tuple[str, ...]:
        """``"SUBDETECTOR/LAYER"`` label of each plane, in the order of :meth:`planes`."""
        return tuple(r[0] for r in self._plane_rows())


#: Plane values where a layer or element says nothing else: no limits, no material, no hits.
PLANE_DEFAULTS: Mapping[str, float] = MappingProxyType(
    {
        "x_max": math.inf,
        "y_max": math.inf,
        "r_min": 0.0,
        "r_max": math.inf,
        "hole_x": 0.0,
        "hole_y": 0.0,
        "x0": 0.0,
        "lambda_i": 0.0,
        "resolution": 0.0,
        "efficiency": 1.0,
        "stereo": 0.0,
    }
)


def _passive(z: float, x_max: float, y_max: float) -> dict[str, float]:
    """Plane values of a passive element (no hits) with the given outer half sizes."""
    return {**PLANE_DEFAULTS, "z": float(z), "x_max": float(x_max), "y_max": float(y_max)}
