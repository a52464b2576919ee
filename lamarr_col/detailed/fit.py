"""Track fit of the detailed simulation: flat Kalman-fit inputs from hits, then the kernel.

:func:`fit_tracks` takes the hits of each track (indices into a
:class:`~lamarr_col.detailed.hits.Hits`), builds the entries of
:func:`lamarr_col.kernels.kalman.fit_kalman` and runs it.

Entries per track, sorted by z: a pixel hit gives an x and a y measurement, a strip hit one
u = x·cos(stereo) + y·sin(stereo) measurement, σ the plane's resolution. Material: every plane
with x/X0 > 0 from the first to the last hit plane, with the material of
:data:`~lamarr_col.detailed.transport.PLANE_MATERIALS` (the hit planes, passive planes such as
RICH1, and measuring planes without a hit of the track). Upstream of the magnet a plane without
a hit counts only if the seed's straight line crosses its active area.

Seed (unless ``seeds`` is given): a least-squares straight line through the pixel hits (x and y
against z) at the first hit; q/p from ``true_qop`` scaled as p·(1 + 0.1·g), g a standard normal
from ``numpy.random.default_rng(seed)`` in track order, when given; otherwise from the bend
between the VELO line and a straight line through the stereo-0 T hits:
qop ≈ −Δtx / (κ·∫B_y dz), κ = 0.299792458 MeV/(T·mm), ∫B_y dz of the whole field map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.hits import Hits, inside
from lamarr_col.detailed.materials import get_material
from lamarr_col.detailed.transport import PLANE_MATERIALS
from lamarr_col.detector.conditions import GROUPS, ConditionSet
from lamarr_col.kernels.field import KAPPA
from lamarr_col.kernels.kalman import ENTRY_FIELDS, fit_kalman

__all__ = ["PION_MASS", "FitResult", "build_entries", "fit_tracks", "seed_states"]

PION_MASS = 139.57039  # MeV
_MAGNET_Z = 3000.0  # mm; straight-line material check upstream of this


@dataclass(frozen=True)
class FitResult:
    """Per track (t): ``first`` (t, 6) x, y, z, tx, ty, qop (mm, e/MeV) leaving the first hit
    plane; ``beam`` (t, 6) at the closest approach to the z axis; ``cov_first``, ``cov_beam``
    (t, 5, 5) in (x, y, tx, ty, qop); ``chi2``, ``ndof``; ``ok`` False where the fit failed
    (outputs NaN); ``seeds`` (t, 6) the seeds used."""

    first: npt.NDArray[np.float64]
    cov_first: npt.NDArray[np.float64]
    beam: npt.NDArray[np.float64]
    cov_beam: npt.NDArray[np.float64]
    chi2: npt.NDArray[np.float64]
    ndof: npt.NDArray[np.int64]
    ok: npt.NDArray[np.bool_]
    seeds: npt.NDArray[np.float64]


def _line(z: npt.NDArray[np.float64], v: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Least-squares v = a + b·z; returns (a, b)."""
    b, a = np.polyfit(z, v, 1)
    return float(a), float(b)


def seed_states(
    hits: Hits,
    track_hits: Sequence[npt.ArrayLike],
    conditions: ConditionSet,
    *,
    true_qop: npt.ArrayLike | None = None,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """Seeds (t, 6) at each track's first hit (module docstring); tracks need two pixel hits."""
    planes = conditions.planes()
    stereo = planes["stereo"]
    group = planes["group"]
    field = conditions.field
    bdl = float(np.sum(field.by) * field.dz)
    out = np.empty((len(track_hits), 6))
    for t, idx in enumerate(track_hits):
        ix = np.sort(np.asarray(idx, dtype=np.int64))
        pix = ix[np.isfinite(hits.x[ix])]
        if len(np.unique(hits.z[pix])) < 2:
            msg = f"seed_states: track {t} has fewer than two pixel planes; pass seeds instead"
            raise ValueError(msg)
        z_first = float(hits.z[ix].min())
        ax, bx = _line(hits.z[pix], hits.x[pix])
        ay, by = _line(hits.z[pix], hits.y[pix])
        out[t, :5] = ax + bx * z_first, ay + by * z_first, z_first, bx, by
        tx_hits = ix[(group[hits.plane[ix]] == GROUPS["T"]) & (stereo[hits.plane[ix]] == 0.0)]
        if len(np.unique(hits.z[tx_hits])) >= 2 and bdl != 0.0:
            _, bx_t = _line(hits.z[tx_hits], hits.u[tx_hits])
            out[t, 5] = -(bx_t - bx) / (KAPPA * bdl)
        else:
            out[t, 5] = 1e-4  # 10 GeV, positive, when there is no bend to measure
    if true_qop is not None:
        q = np.asarray(true_qop, dtype=np.float64)
        g = np.random.default_rng(seed).standard_normal(len(q))
        out[:, 5] = q / (1.0 + 0.1 * g)
    return out


def build_entries(
    hits: Hits,
    track_hits: Sequence[npt.ArrayLike],
    conditions: ConditionSet,
    seeds: npt.NDArray[np.float64],
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64]
]:
    """The kernel's ``offsets``, ``entries`` (h, 8), ``entry_material`` and ``materials``."""
    planes = conditions.planes()
    names = {code: name for name, code in GROUPS.items()}
    mat_names = sorted({PLANE_MATERIALS[names[int(g)]] for g in planes["group"]})
    mats = [get_material(m) for m in mat_names]
    materials = np.ascontiguousarray(np.stack([m.as_array() for m in mats]))
    plane_mat = np.array([mat_names.index(PLANE_MATERIALS[names[int(g)]]) for g in planes["group"]])
    x0 = planes["x0"]
    thick = np.array([x0[j] * mats[plane_mat[j]].radiation_length_mm for j in range(len(x0))])
    grams = np.array([x0[j] * mats[plane_mat[j]].radiation_length for j in range(len(x0))])
    pz = planes["z"].astype(np.float64)
    rows: list[list[float]] = []
    mat_rows: list[int] = []
    offsets = [0]
    for t, idx in enumerate(track_hits):
        ix = np.asarray(idx, dtype=np.int64)
        ix = ix[np.argsort(hits.z[ix], kind="stable")]
        hit_planes = set(hits.plane[ix].tolist())
        pl_lo, pl_hi = int(hits.plane[ix].min()), int(hits.plane[ix].max())
        per_plane: dict[int, list[list[float]]] = {}
        for h in ix:
            j = int(hits.plane[h])
            res = float(planes["resolution"][j])
            if np.isfinite(hits.x[h]):
                meas = [[1.0, 0.0, float(hits.x[h])], [0.0, 1.0, float(hits.y[h])]]
            else:
                st = float(planes["stereo"][j])
                meas = [[float(np.cos(st)), float(np.sin(st)), float(hits.u[h])]]
            per_plane.setdefault(j, []).extend(
                [[pz[j], c, s, v, res, 0.0, 0.0, 0.0] for c, s, v in meas]
            )
        for j in range(pl_lo, pl_hi + 1):
            if j not in hit_planes:
                if x0[j] <= 0.0:
                    continue
                if pz[j] < _MAGNET_Z:
                    dz = pz[j] - seeds[t, 2]
                    xs = np.array([seeds[t, 0] + seeds[t, 3] * dz])
                    ys = np.array([seeds[t, 1] + seeds[t, 4] * dz])
                    if not inside(planes, np.array([j]), xs, ys)[0]:
                        continue
                per_plane[j] = [[pz[j], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
            entries = per_plane[j]
            entries[0][5:8] = [float(x0[j]), float(thick[j]), float(grams[j])]
            rows.extend(entries)
            mat_rows.extend([int(plane_mat[j])] * len(entries))
        offsets.append(len(rows))
    entries_arr = np.ascontiguousarray(
        np.array(rows, dtype=np.float64).reshape(-1, len(ENTRY_FIELDS))
    )
    return (
        np.asarray(offsets, dtype=np.int64),
        entries_arr,
        np.asarray(mat_rows, dtype=np.int64),
        materials,
    )


def fit_tracks(
    hits: Hits,
    track_hits: Sequence[npt.ArrayLike],
    conditions: ConditionSet,
    seeds: npt.ArrayLike | None = None,
    *,
    true_qop: npt.ArrayLike | None = None,
    mass: float | npt.ArrayLike = PION_MASS,
    seed: int = 0,
    step: float = 50.0,
) -> FitResult:
    """Kalman fit of each track, ``track_hits[i]`` its indices into ``hits`` (module docstring).

    ``seeds`` (t, 6) x, y, z, tx, ty, qop (mm, e/MeV) or None to seed from the hits (and
    ``true_qop`` (t,) if given, smeared with ``seed``); ``mass`` (MeV) the hypothesis for
    energy loss and scattering; ``step`` the RK4 step (mm).
    """
    n = len(track_hits)
    if seeds is None:
        s0 = seed_states(hits, track_hits, conditions, true_qop=true_qop, seed=seed)
    else:
        s0 = np.ascontiguousarray(seeds, dtype=np.float64).reshape(n, 6)
    offsets, entries, entry_material, materials = build_entries(hits, track_hits, conditions, s0)
    masses = np.ascontiguousarray(np.broadcast_to(np.asarray(mass, dtype=np.float64), (n,)))
    field = conditions.field
    first, beam = np.empty((n, 6)), np.empty((n, 6))
    cov_first, cov_beam = np.empty((n, 5, 5)), np.empty((n, 5, 5))
    chi2, ndof, ok = np.empty(n), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.bool_)
    fit_kalman(
        offsets,
        entries,
        entry_material,
        materials,
        s0,
        masses,
        field.z0,
        field.dz,
        np.ascontiguousarray(field.by, dtype=np.float64),
        step,
        first,
        cov_first,
        beam,
        cov_beam,
        chi2,
        ndof,
        ok,
    )
    return FitResult(first, cov_first, beam, cov_beam, chi2, ndof, ok, s0)
