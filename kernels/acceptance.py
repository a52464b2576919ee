"""Geometrical acceptance: which detector planes a particle crosses inside their active area,
and the LHCb track type and sub-detector flags that follow.

Inputs (flat buffers, mm):
    x, y        (n_particles, n_planes) float64 positions at every plane, NaN where the particle
                never reaches the plane (decayed, absorbed, stopped by the propagator)
    x_max, y_max, r_min, r_max, hole_x, hole_y   (n_planes,) float64 plane geometry: the outer
                rectangle |x| ≤ x_max, |y| ≤ y_max; the annulus r_min ≤ r ≤ r_max (0 and inf
                when unused); points in the rectangular beam hole |x| < hole_x and
                |y| < hole_y are outside (0 for no hole)
    group       (n_planes,) int64 counting group of each plane (:data:`GROUPS`):

        −1 ignored   0 VELO   1 RICH1   2 UT   3 MAGNET   4 T1   5 T2   6 T3   7 RICH2
        8 ECAL       9 HCAL  10 M1     11 M2  12 M3     13 M4  14 M5

    :func:`groups_from_conditions` derives these from the ``group`` and ``station`` arrays of
    ``lamarr_col.detector``'s ``ConditionSet.planes()`` (absorbers are ignored).
    Groups after MAGNET are downstream of the dipole: a particle outside any MAGNET plane hits
    the yoke, so its downstream planes count as not inside (the magnet planes are the aperture
    at the entrance and exit of the dipole; with no MAGNET plane nothing is cut).

Outputs:
    inside      (n_particles, n_planes) bool
    counts      (n_particles, N_GROUPS) int32 planes inside per group
    flags       (n_particles,) uint32 with the bits of :data:`BITS`:
                0 VELO, 1 UT, 2 T, 3 MAGNET, 4 RICH1, 5 RICH2, 6 ECAL, 7–10 M2–M5, 11 MUON,
                12 LONG, 13 UPSTREAM, 14 DOWNSTREAM, 15 HCAL, 16 M1
    track_type  (n_particles,) int8, LHCb numbering (the ``Track::Types`` enum, also listed
                in the LHCb glossary): 0 none, 1 VELO, 3 long, 4 upstream, 5 downstream, 6 T

Rules (:class:`AcceptanceRules`, all thresholds are parameters):
    VELO        ≥ min_velo VELO planes (3, the LHCb reconstructible-VELO requirement)
    UT          ≥ min_ut UT planes (3)
    T           ≥ min_t_station planes in each of T1, T2, T3 (1; with all four layers of a
                SciFi station as planes, 2 approximates LHCb's "x and stereo hit" rule)
    MAGNET      inside every MAGNET plane (at least one must exist)
    RICH1/2     inside every plane of the group (the radiator entrance and exit)
    ECAL, HCAL  inside every plane of the group (front face, shower maximum; outside the hole)
    M1 … M5     ≥ min_muon_station planes of that station (1)
    MUON        M2 and M3, the least any isMuon momentum bin asks for
    long = VELO & T, upstream = VELO & UT & !T, downstream = UT & T & !VELO; the track type
    is long, else upstream, else VELO, else downstream, else T, else none.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

__all__ = [
    "BITS",
    "CONDITION_GROUPS",
    "GROUPS",
    "N_GROUPS",
    "TRACK_TYPES",
    "Acceptance",
    "AcceptanceRules",
    "PlaneGeometry",
    "acceptance",
    "acceptance_kernel",
    "acceptance_reference",
    "groups_from_conditions",
]

GROUP_IGNORED, VELO, RICH1, UT, MAGNET, T1, T2, T3, RICH2, ECAL, HCAL, M1, M2, M3, M4, M5 = range(
    -1, 15
)
N_GROUPS = 15
#: Plane group codes (see the module docstring).
GROUPS = {
    "IGNORED": GROUP_IGNORED,
    "VELO": VELO,
    "RICH1": RICH1,
    "UT": UT,
    "MAGNET": MAGNET,
    "T1": T1,
    "T2": T2,
    "T3": T3,
    "RICH2": RICH2,
    "ECAL": ECAL,
    "HCAL": HCAL,
    "M1": M1,
    "M2": M2,
    "M3": M3,
    "M4": M4,
    "M5": M5,
}

#: Bit numbers of the ``flags`` word.
BITS = {
    "VELO": 0,
    "UT": 1,
    "T": 2,
    "MAGNET": 3,
    "RICH1": 4,
    "RICH2": 5,
    "ECAL": 6,
    "M2": 7,
    "M3": 8,
    "M4": 9,
    "M5": 10,
    "MUON": 11,
    "LONG": 12,
    "UPSTREAM": 13,
    "DOWNSTREAM": 14,
    "HCAL": 15,
    "M1": 16,
}

#: LHCb track-type codes.
TRACK_TYPES = {"NONE": 0, "VELO": 1, "LONG": 3, "UPSTREAM": 4, "DOWNSTREAM": 5, "T": 6}


#: ``lamarr_col.detector.conditions.GROUPS`` (kernels may not import it; a test compares).
CONDITION_GROUPS = {
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


def groups_from_conditions(group: np.ndarray, station: np.ndarray) -> np.ndarray:
    """Counting groups (n_planes,) int64 from a condition set's plane ``group`` codes and
    ``station`` numbers (1–3 for T layers, 1–5 for muon stations M1–M5)."""
    group = np.asarray(group)
    station = np.asarray(station)
    out = np.full(group.shape, GROUP_IGNORED, dtype=np.int64)
    for name in ("VELO", "RICH1", "UT", "MAGNET", "RICH2", "ECAL", "HCAL"):
        out[group == CONDITION_GROUPS[name]] = GROUPS[name]
    for k in (1, 2, 3):
        out[(group == CONDITION_GROUPS["T"]) & (station == k)] = GROUPS[f"T{k}"]
    for k in (1, 2, 3, 4, 5):
        out[(group == CONDITION_GROUPS["MUON"]) & (station == k)] = GROUPS[f"M{k}"]
    return out


class AcceptanceRules(NamedTuple):
    """Minimum numbers of planes inside (see the module docstring)."""

    min_velo: int = 3
    min_ut: int = 3
    min_t_station: int = 1
    min_muon_station: int = 1


class PlaneGeometry(NamedTuple):
    """Plane geometry as flat (n_planes,) arrays; mm, group codes from :data:`GROUPS`."""

    x_max: np.ndarray
    y_max: np.ndarray
    r_min: np.ndarray
    r_max: np.ndarray
    hole_x: np.ndarray
    hole_y: np.ndarray
    group: np.ndarray


class Acceptance(NamedTuple):
    """Per-particle acceptance: see the module docstring for shapes and codes."""

    inside: np.ndarray
    counts: np.ndarray
    flags: np.ndarray
    track_type: np.ndarray


@nb.njit(cache=True)
def group_sizes(group: np.ndarray) -> np.ndarray:
    """Number of planes of each counting group (N_GROUPS,) int64; group -1 is ignored."""
    n_in_group = np.zeros(N_GROUPS, dtype=np.int64)
    for g in group:
        if g >= 0:
            n_in_group[g] += 1
    return n_in_group


@nb.njit(cache=True, inline="always")
def inside_plane(
    x: float,
    y: float,
    x_max: float,
    y_max: float,
    r_min2: float,
    r_max2: float,
    hole_x: float,
    hole_y: float,
) -> bool:
    """Whether (x, y) [mm] is in a plane's active area: inside the outer rectangle and the
    radius range (squared radii given), outside the rectangular beam hole; NaN is outside."""
    ax, ay = abs(x), abs(y)
    r2 = x * x + y * y
    # & (not `and`) keeps the test free of branches; NaN fails every comparison
    return (
        (ax <= x_max)
        & (ay <= y_max)
        & (r2 >= r_min2)
        & (r2 <= r_max2)
        & ((ax >= hole_x) | (ay >= hole_y))
    )


@nb.njit(cache=True, inline="always")
def _flags(counts: np.ndarray, n_in_group: np.ndarray, rules: np.ndarray) -> tuple[int, int]:
    """(flags, track type) from the per-group counts of one particle."""
    velo = counts[VELO] >= rules[0]
    ut = counts[UT] >= rules[1]
    t = counts[T1] >= rules[2] and counts[T2] >= rules[2] and counts[T3] >= rules[2]
    f = 0
    if velo:
        f |= 1 << 0
    if ut:
        f |= 1 << 1
    if t:
        f |= 1 << 2
    # bits 3-6: groups that must be inside on every one of their planes
    for bit, g in ((3, MAGNET), (4, RICH1), (5, RICH2), (6, ECAL), (15, HCAL)):
        if n_in_group[g] > 0 and counts[g] == n_in_group[g]:
            f |= 1 << bit
    for k in range(4):
        if counts[M2 + k] >= rules[3]:
            f |= 1 << (7 + k)
    if counts[M1] >= rules[3]:
        f |= 1 << 16
    if counts[M2] >= rules[3] and counts[M3] >= rules[3]:
        f |= 1 << 11
    kind = 0
    if velo and t:
        kind = 3
        f |= 1 << 12
    elif velo and ut:
        kind = 4
        f |= 1 << 13
    elif velo:
        kind = 1
    elif ut and t:
        kind = 5
        f |= 1 << 14
    elif t:
        kind = 6
    return f, kind


@nb.njit(cache=True, parallel=True)
def acceptance_kernel(
    x: np.ndarray,
    y: np.ndarray,
    x_max: np.ndarray,
    y_max: np.ndarray,
    r_min: np.ndarray,
    r_max: np.ndarray,
    hole_x: np.ndarray,
    hole_y: np.ndarray,
    group: np.ndarray,
    rules: np.ndarray,
    inside: np.ndarray,
    counts: np.ndarray,
    flags: np.ndarray,
    track_type: np.ndarray,
) -> None:
    """x, y (n, p) mm; plane arrays (p,); rules (4,) int64 = AcceptanceRules → inside (n, p)
    bool, counts (n, N_GROUPS) int32, flags (n,) uint32, track_type (n,) int8."""
    n_planes = x.shape[1]
    r_min2 = r_min * r_min
    r_max2 = r_max * r_max
    n_in_group = group_sizes(group)
    for i in nb.prange(x.shape[0]):
        c = counts[i]
        c[:] = 0
        for j in range(n_planes):
            xv, yv = x[i, j], y[i, j]
            ok = inside_plane(
                xv, yv, x_max[j], y_max[j], r_min2[j], r_max2[j], hole_x[j], hole_y[j]
            )
            inside[i, j] = ok
            g = group[j]
            if ok and g >= 0:
                c[g] += 1
        if c[MAGNET] < n_in_group[MAGNET]:
            for j in range(n_planes):
                if group[j] > MAGNET:
                    inside[i, j] = False
            for g in range(MAGNET + 1, N_GROUPS):
                c[g] = 0
        f, kind = _flags(c, n_in_group, rules)
        flags[i] = f
        track_type[i] = kind


def acceptance(
    x: np.ndarray,
    y: np.ndarray,
    planes: PlaneGeometry,
    rules: AcceptanceRules | None = None,
) -> Acceptance:
    """Acceptance of particles at (x, y) (n, n_planes) [mm] for ``planes``; see the module doc."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    x_max, y_max, r_min, r_max, hole_x, hole_y = (
        np.ascontiguousarray(a, dtype=np.float64) for a in planes[:6]
    )
    geo = (x_max, y_max, r_min, r_max, hole_x, hole_y)
    group = np.ascontiguousarray(planes.group, dtype=np.int64)
    n_planes = group.shape[0]
    if x.shape != y.shape or x.ndim != 2 or x.shape[1] != n_planes:
        msg = f"x and y must both be (n_particles, {n_planes}), got {x.shape} and {y.shape}"
        raise ValueError(msg)
    if any(a.shape != (n_planes,) for a in geo):
        msg = f"every plane array must have shape ({n_planes},)"
        raise ValueError(msg)
    if np.any((group < -1) | (group >= N_GROUPS)):
        msg = f"plane group codes must be in -1..{N_GROUPS - 1} ({', '.join(GROUPS)})"
        raise ValueError(msg)
    r = np.asarray(rules if rules is not None else AcceptanceRules(), dtype=np.int64)
    if np.any(r < 1):
        msg = f"acceptance rules must be ≥ 1, got {rules}"
        raise ValueError(msg)
    n = x.shape[0]
    out = Acceptance(
        np.empty((n, n_planes), dtype=np.bool_),
        np.empty((n, N_GROUPS), dtype=np.int32),
        np.empty(n, dtype=np.uint32),
        np.empty(n, dtype=np.int8),
    )
    acceptance_kernel(x, y, *geo, group, r, *out)  # type: ignore[call-arg]
    return out


def acceptance_reference(
    x: np.ndarray,
    y: np.ndarray,
    planes: PlaneGeometry,
    rules: AcceptanceRules | None = None,
) -> Acceptance:
    """Per-particle numpy twin of :func:`acceptance`, written from the module docstring."""
    rules = rules or AcceptanceRules()
    x_max, y_max, r_min, r_max, hole_x, hole_y, group = (np.asarray(a) for a in planes)
    n, p = np.shape(x)
    n_in_group = np.array([np.sum(group == g) for g in range(N_GROUPS)])
    out = Acceptance(
        np.zeros((n, p), bool),
        np.zeros((n, N_GROUPS), np.int32),
        np.zeros(n, np.uint32),
        np.zeros(n, np.int8),
    )
    for i in range(n):
        xi, yi = np.asarray(x[i], float), np.asarray(y[i], float)
        with np.errstate(invalid="ignore"):
            r = np.hypot(xi, yi)
            ok = (
                (np.abs(xi) <= x_max)
                & (np.abs(yi) <= y_max)
                & (r >= r_min)
                & (r <= r_max)
                & ~((np.abs(xi) < hole_x) & (np.abs(yi) < hole_y))
            )
        if np.sum(ok & (group == MAGNET)) < n_in_group[MAGNET]:
            ok &= group <= MAGNET
        counts = np.array([np.sum(ok & (group == g)) for g in range(N_GROUPS)])
        has = {
            "VELO": counts[VELO] >= rules.min_velo,
            "UT": counts[UT] >= rules.min_ut,
            "T": all(counts[g] >= rules.min_t_station for g in (T1, T2, T3)),
        }
        for name in ("MAGNET", "RICH1", "RICH2", "ECAL", "HCAL"):
            g = GROUPS[name]
            has[name] = n_in_group[g] > 0 and counts[g] == n_in_group[g]
        for name in ("M1", "M2", "M3", "M4", "M5"):
            has[name] = counts[GROUPS[name]] >= rules.min_muon_station
        has["MUON"] = has["M2"] and has["M3"]
        has["LONG"] = has["VELO"] and has["T"]
        has["UPSTREAM"] = has["VELO"] and has["UT"] and not has["T"]
        has["DOWNSTREAM"] = has["UT"] and has["T"] and not has["VELO"]
        kind = "NONE"
        for name, cond in (
            ("LONG", has["LONG"]),
            ("UPSTREAM", has["UPSTREAM"]),
            ("VELO", has["VELO"]),
            ("DOWNSTREAM", has["DOWNSTREAM"]),
            ("T", has["T"]),
        ):
            if cond:
                kind = name
                break
        out.inside[i] = ok
        out.counts[i] = counts
        out.flags[i] = sum(1 << BITS[k] for k, v in has.items() if v)
        out.track_type[i] = TRACK_TYPES[kind]
    return out
