"""Muon identification of the reconstructed tracks: isMuon, its acceptance and the distance D².

For every track with a momentum and a T segment (long and downstream tracks):

1. the T segment's straight line (:func:`.matching.segment_lines`) is extrapolated to M2–M5
   (the field beyond the T stations is negligible);
2. the extrapolation error σ per station and coordinate: multiple scattering of a muon of the
   track's momentum in every layer between the T stations and the station (Highland, with the
   mean Bethe loss of the layers before it lowering the momentum; a layer of thickness L at
   distance D contributes θ0²·(D² + D·L + L²/3)) and the pad size (pad²/12);
3. the field of interest is ``max(foi_sigma · σ, foi_min_pads · pad)`` per coordinate
   (``[muon.id]`` of the condition set) and the closest hit inside it is searched in each
   station (:func:`lamarr_col.kernels.muon.closest_hits`; distance in units of σ);
4. **isMuon** follows LHCb's momentum-dependent rule (JINST 8 (2013) P10020): no muon below
   3 GeV; 3–6 GeV: hits in M2 and M3; 6–10 GeV: M2, M3 and M4 or M5; above: all four;
5. the track is in the muon acceptance when its extrapolation lies inside M2 and M3 (outside
   their beam holes); D² is the mean over the stations with a hit of the squared distance.

The muon and non-muon log-likelihoods from D² are in :mod:`.muon_likelihood`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.downstream import last_t_z
from lamarr_col.detailed.materials import get_material
from lamarr_col.detailed.muon_hits import MuonHits, id_stations, pads
from lamarr_col.detailed.transport import PLANE_MATERIALS
from lamarr_col.detector.conditions import GROUPS, ConditionSet
from lamarr_col.kernels.material import mean_energy_loss
from lamarr_col.kernels.muon import closest_hits

__all__ = ["MUON_MASS", "MuonId", "extrapolation_sigma", "is_muon_rule", "muon_id"]

MUON_MASS = 105.6583755  # MeV [PDG]
_GEV = 1000.0


@dataclass(frozen=True)
class MuonId:
    """Per track (t,): ``is_muon``, ``in_acceptance``, ``n_stations`` (stations with a hit in
    the FOI), ``d2`` (NaN without hits), per station (t, 4) ``station_hit`` (row of the hit in
    :class:`.muon_hits.MuonHits`, −1 none) and ``dist2``, and the extrapolation ``extrap``
    (t, 4, 2) mm and ``foi`` (t, 4, 2) mm used."""

    is_muon: npt.NDArray[np.bool_]
    in_acceptance: npt.NDArray[np.bool_]
    n_stations: npt.NDArray[np.int8]
    d2: npt.NDArray[np.float64]
    station_hit: npt.NDArray[np.int64]
    dist2: npt.NDArray[np.float64]
    extrap: npt.NDArray[np.float64]
    foi: npt.NDArray[np.float64]


def is_muon_rule(p: npt.NDArray[np.float64], found: npt.NDArray[np.bool_]) -> npt.NDArray:
    """LHCb's isMuon from the momentum ``p`` (MeV) and hits found in M2–M5 (t, 4)."""
    m2, m3, m4, m5 = found.T
    base = m2 & m3
    return np.select(
        [p < 3 * _GEV, p < 6 * _GEV, p < 10 * _GEV],
        [np.zeros_like(base), base, base & (m4 | m5)],
        base & m4 & m5,
    )


def extrapolation_sigma(
    p: npt.NDArray[np.float64],
    tx: npt.NDArray[np.float64],
    ty: npt.NDArray[np.float64],
    conditions: ConditionSet,
    z_from: float,
) -> npt.NDArray[np.float64]:
    """σ (t, 4) mm of a muon's position at M2–M5 from the scattering beyond ``z_from`` (see
    the module docstring); ``p`` in MeV."""
    planes = conditions.planes()
    names = {code: name for name, code in GROUPS.items()}
    stations = id_stations(conditions)
    z_st = np.array([s.z for s in stations])
    n = len(p)
    var = np.zeros((n, len(stations)))
    mom = np.asarray(p, dtype=np.float64).copy()
    path = np.sqrt(1.0 + tx * tx + ty * ty)
    states = np.zeros((n, 6))
    states[:, 3], states[:, 4] = tx, ty
    charge, mass = np.ones(n), np.full(n, MUON_MASS)
    loss = np.empty(n)
    plane_z = np.asarray(planes["z"], dtype=np.float64)
    plane_x0 = np.asarray(planes["x0"], dtype=np.float64)
    for j in np.flatnonzero((plane_z > z_from) & (plane_x0 > 0.0)):
        z = float(planes["z"][j])
        if z >= z_st[-1]:
            break
        material = get_material(PLANE_MATERIALS[names[int(planes["group"][j])]])
        t = planes["x0"][j] * path
        beta = mom / np.sqrt(mom * mom + MUON_MASS**2)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.maximum(1.0 + 0.038 * np.log(t / (beta * beta)), 0.0)
            theta0 = 13.6 / (beta * mom) * np.sqrt(t) * corr
        length = planes["x0"][j] * material.radiation_length_mm * path
        d = (z_st - z)[None, :]
        spread = (theta0**2)[:, None] * (d * d + d * length[:, None] + (length**2 / 3.0)[:, None])
        var += np.where(d > 0, spread, 0.0)
        # the mean loss lowers the momentum seen by the layers behind
        states[:, 5] = np.where(mom > 0, 1.0 / np.maximum(mom, 1e-9), 0.0)
        grams = planes["x0"][j] * material.radiation_length
        mean_energy_loss(states, charge, mass, float(grams), material.as_array(), loss)
        energy = np.sqrt(mom * mom + MUON_MASS**2) - loss
        mom = np.sqrt(np.maximum(energy * energy - MUON_MASS**2, 1.0))
    return np.sqrt(var)


def muon_id(
    lines: npt.NDArray[np.float64],
    track_event: npt.NDArray[np.integer],
    p: npt.NDArray[np.float64],
    muon_hits: MuonHits,
    conditions: ConditionSet,
    with_momentum: npt.NDArray[np.bool_],
) -> MuonId:
    """isMuon, acceptance and D² of the tracks (see the module docstring): ``lines`` (t, 5)
    x, y, z, tx, ty of their T segments (:func:`.matching.segment_lines`, NaN without one),
    ``track_event`` (t,) their batch event, ``p`` (t,) reconstructed momentum (MeV),
    ``with_momentum`` (t,) the tracks to identify."""
    n = len(lines)
    stations = id_stations(conditions)
    n_st = len(stations)
    ok = with_momentum & np.all(np.isfinite(lines), axis=1) & np.isfinite(p) & (p > 0)
    extrap = np.full((n, n_st, 2), np.nan)
    foi = np.full((n, n_st, 2), np.nan)
    scale = np.ones((n, n_st, 2))
    in_station = np.zeros((n, n_st), dtype=bool)
    sel = np.flatnonzero(ok)
    ls = lines[sel]
    sigma = extrapolation_sigma(p[sel], ls[:, 3], ls[:, 4], conditions, last_t_z(conditions))
    mid = conditions.muon_id
    for m, st in enumerate(stations):
        dz = st.z - ls[:, 2]
        x, y = ls[:, 0] + ls[:, 3] * dz, ls[:, 1] + ls[:, 4] * dz
        region, _, _ = pads(st, x, y)
        inside = region >= 0
        r = np.maximum(region, 0)
        pad_x, pad_y = np.asarray(st.pad_x)[r], np.asarray(st.pad_y)[r]
        sx = np.sqrt(sigma[:, m] ** 2 + pad_x**2 / 12.0)
        sy = np.sqrt(sigma[:, m] ** 2 + pad_y**2 / 12.0)
        extrap[sel, m, 0], extrap[sel, m, 1] = x, y
        foi[sel, m, 0] = np.maximum(mid.foi_sigma * sx, mid.foi_min_pads * pad_x)
        foi[sel, m, 1] = np.maximum(mid.foi_sigma * sy, mid.foi_min_pads * pad_y)
        scale[sel, m, 0], scale[sel, m, 1] = sx, sy
        in_station[sel, m] = inside
    dist2 = np.empty((n, n_st))
    station_hit = np.empty((n, n_st), dtype=np.int64)
    closest_hits(
        np.ascontiguousarray(np.stack([muon_hits.x, muon_hits.y], axis=1)),
        muon_hits.offsets,
        np.asarray(track_event, dtype=np.int64),
        extrap,
        foi,
        scale,
        dist2,
        station_hit,
    )
    has = station_hit >= 0
    n_found = has.sum(axis=1)
    with np.errstate(invalid="ignore"):
        d2 = np.where(n_found > 0, np.nansum(np.where(has, dist2, 0.0), axis=1) / n_found, np.nan)
    return MuonId(
        is_muon=ok & is_muon_rule(np.where(ok, p, 0.0), has),
        in_acceptance=ok & in_station[:, 0] & in_station[:, 1],
        n_stations=n_found.astype(np.int8),
        d2=d2,
        station_hit=station_hit,
        dist2=dist2,
        extrap=extrap,
        foi=foi,
    )
