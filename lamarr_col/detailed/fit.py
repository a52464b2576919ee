"""Track fit of the detailed simulation: flat Kalman-fit inputs from hits, then the kernel.

:func:`fit_tracks` takes the hits of each track (indices into a
:class:`~lamarr_col.detailed.hits.Hits`), builds the entries of
:func:`lamarr_col.kernels.kalman.fit_kalman` and runs it.

Entries per track, sorted by z: a pixel hit gives an x and a y measurement, a strip hit one
u = x·cos(stereo) + y·sin(stereo) measurement, σ the plane's resolution. Material: every plane
with x/X0 > 0 from the first to the last hit plane, with the material of
:data:`~lamarr_col.detailed.transport.PLANE_MATERIALS` (the hit planes, passive planes such as
RICH1, and measuring planes without a hit of the track). Upstream of the magnet a plane without
a hit counts only if the seed's straight line crosses its active area. The condition set's RF
foil lies between the first hit and the beam line; the kernel undoes it on the way there.

Seed (unless ``seeds`` is given): a least-squares straight line through the pixel hits (x and y
against z) at the first hit; q/p from ``true_qop`` scaled as p·(1 + 0.1·g), g a standard normal
from ``numpy.random.default_rng(seed)`` in track order, when given; otherwise from the bend
between the VELO line and a straight line through the stereo-0 T hits:
qop ≈ −Δtx / (κ·∫B_y dz), κ = 0.299792458 MeV/(T·mm), ∫B_y dz of the whole field map.

Tracks are given either as a sequence of index arrays or as a :class:`TrackHits` (CSR:
``offsets`` and ``index``), which skips every per-track Python object; both go through the numba
builders of :mod:`lamarr_col.kernels.fit_entries`. :func:`seed_states_reference` and
:func:`build_entries_reference` are the plain-Python twins, for tests. The seed lines are
least-squares fits from centred sums (the reference uses ``numpy.polyfit``): the two agree to
rounding (≲ 1e-13 relative); given the same seeds, the entries are identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.hits import Hits, inside
from lamarr_col.detailed.materials import get_material
from lamarr_col.detailed.transport import PLANE_MATERIALS, foil_inputs
from lamarr_col.detector.conditions import GROUPS, ConditionSet
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.kernels.field import KAPPA
from lamarr_col.kernels.fit_entries import TABLE_ROWS, build_fit_entries, seed_lines
from lamarr_col.kernels.kalman import ENTRY_FIELDS, fit_kalman

__all__ = [
    "PION_MASS",
    "FitResult",
    "TrackHits",
    "build_entries",
    "build_entries_reference",
    "fit_tracks",
    "reference_states",
    "seed_states",
    "seed_states_reference",
    "tracks_from_lists",
]

PION_MASS = 139.57039  # MeV
_WITH_VELO = (TRACK_TYPES["VELO"], TRACK_TYPES["LONG"], TRACK_TYPES["UPSTREAM"])
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


@dataclass(frozen=True)
class TrackHits:
    """Tracks as flat CSR: the hits of track i are ``index[offsets[i]:offsets[i + 1]]``, rows
    of a :class:`~lamarr_col.detailed.hits.Hits` in any order; ``offsets`` (t + 1,) int64
    starting at 0 and non-decreasing, ``index`` (offsets[-1],) int64. Use it in place of a
    list of index arrays (a plain tuple ``(offsets, index)`` would read as two tracks)."""

    offsets: npt.NDArray[np.int64]
    index: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        index = np.ascontiguousarray(self.index, dtype=np.int64)
        if offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0:
            msg = "TrackHits: offsets must be a 1-D array starting at 0"
            raise ValueError(msg)
        if np.any(np.diff(offsets) < 0):
            msg = "TrackHits: offsets must not decrease"
            raise ValueError(msg)
        if index.ndim != 1 or len(index) != offsets[-1]:
            msg = f"TrackHits: index must be 1-D of length offsets[-1] = {offsets[-1]}"
            raise ValueError(msg)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "index", index)

    def __len__(self) -> int:
        return len(self.offsets) - 1


def reference_states(
    track_type: npt.NDArray[np.integer], fit: FitResult
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Each track's reference state (t, 6) and covariance (t, 5, 5): closest to the beam for
    tracks with a VELO segment (VELO, long, upstream), at the first hit for the others."""
    at_beam = np.isin(track_type, _WITH_VELO)
    state = np.where(at_beam[:, None], fit.beam, fit.first)
    cov = np.where(at_beam[:, None, None], fit.cov_beam, fit.cov_first)
    return state, cov


def tracks_from_lists(track_hits: Sequence[npt.ArrayLike]) -> TrackHits:
    """CSR form of a sequence of per-track index arrays (the order inside a track is kept)."""
    parts = [np.asarray(idx, dtype=np.int64).reshape(-1) for idx in track_hits]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    index = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    return TrackHits(offsets, index)


def _as_tracks(
    track_hits: Sequence[npt.ArrayLike] | TrackHits, n_hits: int, caller: str
) -> TrackHits:
    """``track_hits`` as CSR with every index in 0..n_hits−1 (negative ones count from the end,
    as numpy indexing does)."""
    tracks = track_hits if isinstance(track_hits, TrackHits) else tracks_from_lists(track_hits)
    index = tracks.index
    if len(index) and (index.min() < -n_hits or index.max() >= n_hits):
        msg = f"{caller}: hit index out of range for {n_hits} hits"
        raise IndexError(msg)
    if len(index) and index.min() < 0:
        tracks = TrackHits(tracks.offsets, np.where(index < 0, index + n_hits, index))
    return tracks


def _hit_arrays(hits: Hits, n_planes: int, caller: str) -> tuple[npt.NDArray[np.generic], ...]:
    """(plane, z, u, x, y) of ``hits`` as contiguous buffers for the kernels."""
    plane = np.ascontiguousarray(hits.plane)
    if not np.issubdtype(plane.dtype, np.integer):
        msg = f"{caller}: hits.plane must be integer, got {plane.dtype}"
        raise TypeError(msg)
    if len(plane) and (plane.min() < 0 or plane.max() >= n_planes):
        msg = f"{caller}: hits.plane out of range for {n_planes} planes"
        raise IndexError(msg)
    coords = (np.ascontiguousarray(a, dtype=np.float64) for a in (hits.z, hits.u, hits.x, hits.y))
    return (plane, *coords)


def _line(z: npt.NDArray[np.float64], v: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Least-squares v = a + b·z; returns (a, b)."""
    b, a = np.polyfit(z, v, 1)
    return float(a), float(b)


def _smear_qop(
    seeds: npt.NDArray[np.float64], true_qop: npt.ArrayLike | None, seed: int
) -> npt.NDArray[np.float64]:
    """Replace the seeds' qop by ``true_qop`` (t,) scaled as p·(1 + 0.1·g), if given."""
    if true_qop is not None:
        q = np.asarray(true_qop, dtype=np.float64)
        g = np.random.default_rng(seed).standard_normal(len(q))
        seeds[:, 5] = q / (1.0 + 0.1 * g)
    return seeds


def seed_states(
    hits: Hits,
    track_hits: Sequence[npt.ArrayLike] | TrackHits,
    conditions: ConditionSet,
    *,
    true_qop: npt.ArrayLike | None = None,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """Seeds (t, 6) x, y, z, tx, ty, qop (mm, e/MeV) at each track's first hit (module
    docstring), by the numba kernel; tracks need pixel hits on two planes (ValueError)."""
    planes = conditions.planes()
    tracks = _as_tracks(track_hits, len(hits), "seed_states")
    plane, z, u, x, y = _hit_arrays(hits, len(planes["z"]), "seed_states")
    t_x = np.ascontiguousarray((planes["group"] == GROUPS["T"]) & (planes["stereo"] == 0.0))
    field = conditions.field
    bdl = float(np.sum(field.by) * field.dz)
    n = len(tracks)
    out = np.empty((n, 6))
    ok = np.empty(n, dtype=np.bool_)
    seed_lines(tracks.offsets, tracks.index, plane, z, u, x, y, t_x, bdl, out, ok)
    if not ok.all():
        t = int(np.argmin(ok))
        msg = f"seed_states: track {t} has fewer than two pixel planes; pass seeds instead"
        raise ValueError(msg)
    return _smear_qop(out, true_qop, seed)


def seed_states_reference(
    hits: Hits,
    track_hits: Sequence[npt.ArrayLike],
    conditions: ConditionSet,
    *,
    true_qop: npt.ArrayLike | None = None,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """Plain-Python twin of :func:`seed_states` (``numpy.polyfit`` lines, one track a loop)."""
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
    return _smear_qop(out, true_qop, seed)


_PlaneLayers = tuple[
    npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]
]


def _plane_layers(planes: dict[str, npt.NDArray[np.generic]]) -> _PlaneLayers:
    """Material of every plane: ``materials`` (k, 10) rows, ``plane_mat`` (p,) int64 the row
    of each plane, its layer thickness (mm) and grams (g/cm²) from x/X0."""
    names = {code: name for name, code in GROUPS.items()}
    mat_names = sorted({PLANE_MATERIALS[names[int(g)]] for g in planes["group"]})
    mats = [get_material(m) for m in mat_names]
    materials = np.ascontiguousarray(np.stack([m.as_array() for m in mats]))
    plane_mat = np.array(
        [mat_names.index(PLANE_MATERIALS[names[int(g)]]) for g in planes["group"]],
        dtype=np.int64,
    )
    x0 = planes["x0"]
    thick = np.array([x0[j] * mats[plane_mat[j]].radiation_length_mm for j in range(len(x0))])
    grams = np.array([x0[j] * mats[plane_mat[j]].radiation_length for j in range(len(x0))])
    return materials, plane_mat, thick, grams


def _plane_table(
    planes: dict[str, npt.NDArray[np.generic]],
    thick: npt.NDArray[np.float64],
    grams: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """The (13, p) plane table of :mod:`lamarr_col.kernels.fit_entries` (rows TABLE_ROWS)."""
    # cos and sin one plane at a time, as the reference computes them
    cos_s = np.array([float(np.cos(float(st))) for st in planes["stereo"]])
    sin_s = np.array([float(np.sin(float(st))) for st in planes["stereo"]])
    rows = {
        "sigma": planes["resolution"],
        "cos": cos_s,
        "sin": sin_s,
        "thickness": thick,
        "grams": grams,
    }
    return np.ascontiguousarray(
        np.stack([np.asarray(rows.get(k, planes.get(k)), dtype=np.float64) for k in TABLE_ROWS])
    )


def build_entries(
    hits: Hits,
    track_hits: Sequence[npt.ArrayLike] | TrackHits,
    conditions: ConditionSet,
    seeds: npt.ArrayLike,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64]
]:
    """The kernel's ``offsets`` (t + 1,), ``entries`` (h, 8), ``entry_material`` (h,) and
    ``materials`` (k, 10) (module docstring), by the numba builders; ``seeds`` (t, 6) decide
    which passive planes upstream of the magnet a track crosses. Every track needs a hit."""
    planes = conditions.planes()
    tracks = _as_tracks(track_hits, len(hits), "build_entries")
    empty = np.flatnonzero(np.diff(tracks.offsets) == 0)
    if len(empty):
        msg = f"build_entries: track {int(empty[0])} has no hits"
        raise ValueError(msg)
    plane, z, u, x, y = _hit_arrays(hits, len(planes["z"]), "build_entries")
    s0 = np.ascontiguousarray(seeds, dtype=np.float64).reshape(len(tracks), 6)
    materials, plane_mat, thick, grams = _plane_layers(planes)
    table = _plane_table(planes, thick, grams)
    offsets, entries, entry_material = build_fit_entries(
        tracks.offsets, tracks.index, plane, z, u, x, y, table, plane_mat, s0, _MAGNET_Z
    )
    return offsets, entries, entry_material, materials


def build_entries_reference(
    hits: Hits,
    track_hits: Sequence[npt.ArrayLike],
    conditions: ConditionSet,
    seeds: npt.NDArray[np.float64],
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64]
]:
    """Plain-Python twin of :func:`build_entries`, one track and one hit at a time."""
    planes = conditions.planes()
    materials, plane_mat, thick, grams = _plane_layers(planes)
    x0 = planes["x0"]
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
    track_hits: Sequence[npt.ArrayLike] | TrackHits,
    conditions: ConditionSet,
    seeds: npt.ArrayLike | None = None,
    *,
    true_qop: npt.ArrayLike | None = None,
    mass: float | npt.ArrayLike = PION_MASS,
    seed: int = 0,
    step: float = 50.0,
) -> FitResult:
    """Kalman fit of each track, ``track_hits[i]`` its indices into ``hits`` or a
    :class:`TrackHits` (module docstring).

    ``seeds`` (t, 6) x, y, z, tx, ty, qop (mm, e/MeV) or None to seed from the hits (and
    ``true_qop`` (t,) if given, smeared with ``seed``); ``mass`` (MeV) the hypothesis for
    energy loss and scattering; ``step`` the RK4 step (mm).
    """
    tracks = _as_tracks(track_hits, len(hits), "fit_tracks")
    n = len(tracks)
    if seeds is None:
        s0 = seed_states(hits, tracks, conditions, true_qop=true_qop, seed=seed)
    else:
        s0 = np.ascontiguousarray(seeds, dtype=np.float64).reshape(n, 6)
    offsets, entries, entry_material, materials = build_entries(hits, tracks, conditions, s0)
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
        *foil_inputs(conditions),
        first,
        cov_first,
        beam,
        cov_beam,
        chi2,
        ndof,
        ok,
    )
    return FitResult(first, cov_first, beam, cov_beam, chi2, ndof, ok, s0)
