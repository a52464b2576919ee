"""Step: single-kick trajectories of the generated particles and their geometric acceptance.

Every mcparticle is followed from its origin as a straight line to the kink plane of the
dipole, kicked, and straight again (:mod:`lamarr_col.kernels.single_kick`, coefficients from
:func:`lamarr_col.detector.kick.single_kick_coefficients`). Its positions at every plane of the
condition set decide which sub-detectors it crosses (:mod:`lamarr_col.kernels.acceptance`):
planes before its origin or beyond its end vertex do not count, and particles flying backwards
(pz ≤ 0) reach nothing. Neutral particles fly straight and, leaving no hits, keep only the
magnet, ECAL and HCAL bits (track type 0).

Columns added to ``mcparticles`` (see ``docs/event_model.md``): ``acc_flags``,
``acc_track_type``, the closest-to-beam point ``ctb_x, ctb_y, ctb_z``, the state after the
magnet at the last T plane ``t_x, t_y, t_tx, t_ty``, and the position at the ECAL shower
maximum ``ecal_x, ecal_y`` (NaN where the particle does not get there).
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.detector.conditions import GROUPS, ConditionSet
from lamarr_col.detector.kick import single_kick_coefficients
from lamarr_col.kernels.acceptance import (
    BITS,
    AcceptanceRules,
    PlaneGeometry,
    groups_from_conditions,
)
from lamarr_col.kernels.geometry import closest_to_beam
from lamarr_col.kernels.trajectory import propagate_and_accept

__all__ = ["ADDS", "READS", "Propagation", "propagate"]

#: mcparticles fields the step reads and adds.
READS = ("pid", "charge", "px", "py", "pz", "vx", "vy", "vz", "end_vz")
ADDS = (
    "acc_flags",
    "acc_track_type",
    "ctb_x",
    "ctb_y",
    "ctb_z",
    "t_x",
    "t_y",
    "t_tx",
    "t_ty",
    "ecal_x",
    "ecal_y",
)


_NEUTRAL_BITS = np.uint32(sum(1 << BITS[name] for name in ("MAGNET", "ECAL", "HCAL")))


@dataclass(frozen=True)
class Propagation:
    """Everything the step needs from a condition set, prepared once."""

    z_planes: npt.NDArray[np.float64]
    geometry: PlaneGeometry
    coefficients: tuple[np.ndarray, ...]
    z_t: float
    z_ecal: float
    rules: AcceptanceRules = AcceptanceRules()  # noqa: RUF009  (an immutable NamedTuple)

    @classmethod
    def from_conditions(cls, conditions: ConditionSet) -> Propagation:
        planes = conditions.planes()
        groups = groups_from_conditions(planes["group"], planes["station"])
        geometry = PlaneGeometry(
            x_max=planes["x_max"],
            y_max=planes["y_max"],
            r_min=planes["r_min"],
            r_max=planes["r_max"],
            hole_x=planes["hole_x"],
            hole_y=planes["hole_y"],
            group=groups,
        )
        coeffs = single_kick_coefficients(conditions)
        names = ("z_kick", "kick_x", "kick_y", "y_offset")
        z = np.ascontiguousarray(planes["z"], dtype=np.float64)
        t_planes = z[planes["group"] == GROUPS["T"]]
        ecal_planes = z[planes["group"] == GROUPS["ECAL"]]
        return cls(
            z_planes=z,
            geometry=geometry,
            coefficients=tuple(np.asarray(coeffs[k], dtype=np.float64) for k in names),
            z_t=float(t_planes.max()),
            z_ecal=float(ecal_planes.max()),  # the shower-maximum plane
        )

    def states(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        """Origin states (n, 6) of the particles; NaN for those flying backwards (pz ≤ 0)."""
        pz = cols["pz"]
        forward = pz > 0
        p = np.sqrt(cols["px"] ** 2 + cols["py"] ** 2 + pz**2)
        safe_pz = np.where(forward, pz, 1.0)
        states = np.empty((len(pz), 6))
        states[:, 0], states[:, 1], states[:, 2] = cols["vx"], cols["vy"], cols["vz"]
        states[:, 3] = cols["px"] / safe_pz
        states[:, 4] = cols["py"] / safe_pz
        states[:, 5] = np.where(p > 0, cols["charge"] / np.where(p > 0, p, 1.0), 0.0)
        states[~forward] = np.nan
        return states

    def run(self, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Flat particle columns in, flat new columns out (the kernels' side of the step)."""
        states = self.states(cols)
        z_end = np.where(np.isfinite(cols["end_vz"]), cols["end_vz"], np.inf)
        rules = np.asarray(self.rules, dtype=np.int64)
        flags, track_type, extra = propagate_and_accept(
            states,
            z_end,
            self.z_planes,
            self.geometry,
            rules,
            self.coefficients,  # type: ignore[arg-type]
            np.array([self.z_t, self.z_ecal]),
        )
        # neutral particles leave no hits: they keep only the magnet and calorimeter bits
        neutral = cols["charge"] == 0
        flags = np.where(neutral, flags & _NEUTRAL_BITS, flags).astype(np.uint32)
        track_type = np.where(neutral, 0, track_type).astype(np.int8)
        ctb = closest_to_beam(np.nan_to_num(states))
        ctb[np.isnan(states[:, 0])] = np.nan
        t, ecal = extra[:, 0], extra[:, 1]
        return {
            "acc_flags": flags,
            "acc_track_type": track_type,
            "ctb_x": ctb[:, 0],
            "ctb_y": ctb[:, 1],
            "ctb_z": ctb[:, 2],
            "t_x": t[:, 0],
            "t_y": t[:, 1],
            "t_tx": t[:, 2],
            "t_ty": t[:, 3],
            "ecal_x": ecal[:, 0],
            "ecal_y": ecal[:, 1],
        }


def propagate(events: ak.Array, conditions: ConditionSet | Propagation) -> ak.Array:
    """``events`` with the propagation columns added to ``mcparticles`` (a new array)."""
    prep = (
        conditions
        if isinstance(conditions, Propagation)
        else Propagation.from_conditions(conditions)
    )
    particles = events.mcparticles
    counts = ak.to_numpy(ak.num(particles, axis=1))
    cols = {f: np.asarray(ak.to_numpy(ak.flatten(particles[f])), dtype=np.float64) for f in READS}
    added = prep.run(cols)
    new = dict(zip(ak.fields(particles), ak.unzip(particles), strict=True))
    new.update({k: ak.unflatten(np.ascontiguousarray(v), counts) for k, v in added.items()})
    return ak.with_field(events, ak.zip(new, depth_limit=2), "mcparticles")
