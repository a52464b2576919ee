"""Track–cluster matching in the ECAL: which cluster a track made, and which clusters no track made.

Every track with a T segment (long and downstream tracks) is extrapolated along the straight
line through its T hits (:func:`.matching.segment_lines`; no field beyond T) to the plane of
shower maximum, and compared with every cluster of its event:

    χ² = Δx² / (σ_track,x² + σ_cluster²) + Δy² / (σ_track,y² + σ_cluster²)

- σ_track = √(a² + (b / p)²) per axis, ``TRACK_SIGMA`` = (a_x, a_y, b) in mm and mm·GeV:
  the spread of the T line's extrapolation about the true shower centre of electrons, from
  the multiple scattering in T and RICH2 (the b / p term) and the T stations' stereo-view
  measurement of y (a_y). Measured on the long electron tracks of 200 ``lhcb-run3`` Pythia
  crossings (median absolute deviations in momentum bins, 2–100 GeV, fitted with that form):
  a_x ≈ 0.5 mm, a_y = 2.3 mm, b = 31 and 33 mm·GeV in x and y, rounded to one b;
- σ_cluster = ``CLUSTER_SIGMA`` cell sizes of the seed's region: what the cell noise and the
  neighbouring showers leave of the position after the corrections of
  :mod:`.ecal_corrections` (≈ 3 mm for 2–5 GeV photons in the inner region, < 1 mm above
  10 GeV, docs/detailed.md).

The matching χ² of the track's own cluster then follows a χ² with two degrees of freedom
(median 1.39); the calibration report checks it on electrons.

Each track keeps the cluster of smallest χ² (``track_cluster``, ``track_chi2``), and each
cluster the track of smallest χ² (``cluster_track``, ``cluster_chi2``; infinity when its event
has no track with a T segment). A cluster is a **photon candidate** when no track matches it
with χ² < ``PHOTON_CHI2_MIN`` (LHCb keeps neutral clusters with a track-match χ² above 4 for
its photons [IJMPA 30 (2015) 1530022]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lamarr_col.detector.conditions import ConditionSet

__all__ = [
    "CLUSTER_SIGMA",
    "PHOTON_CHI2_MIN",
    "TRACK_SIGMA",
    "ClusterMatch",
    "match_tracks",
    "track_sigma",
]

#: (a_x, a_y, b) of the track extrapolation's error √(a² + (b / p)²) at shower maximum, mm
#: and mm·GeV [measured, module docstring]
TRACK_SIGMA = (0.5, 2.3, 32.0)
#: Cluster position resolution in cell sizes (after the position correction) [measured,
#: module docstring]
CLUSTER_SIGMA = 0.05
#: Smallest track-match χ² of a photon candidate
PHOTON_CHI2_MIN = 4.0


@dataclass(frozen=True)
class ClusterMatch:
    """Matching of one batch: per track ``track_cluster`` (index in the batch's clusters, −1),
    ``track_chi2`` (NaN without a candidate); per cluster ``cluster_track`` (index in the
    batch's tracks, −1), ``cluster_chi2`` (inf without a candidate) and ``photon``."""

    track_cluster: npt.NDArray[np.int64]
    track_chi2: npt.NDArray[np.float64]
    cluster_track: npt.NDArray[np.int64]
    cluster_chi2: npt.NDArray[np.float64]
    photon: npt.NDArray[np.bool_]


def track_sigma(p: npt.NDArray[np.float64]) -> tuple[npt.NDArray, npt.NDArray]:
    """(σ_x, σ_y) mm of a track's T-line extrapolation at ECAL shower maximum, ``p`` in MeV."""
    a_x, a_y, b = TRACK_SIGMA
    with np.errstate(divide="ignore"):
        slope = b / (np.asarray(p, dtype=np.float64) / 1000.0)
    return np.hypot(a_x, slope), np.hypot(a_y, slope)


def match_tracks(
    lines: npt.NDArray[np.float64],
    p: npt.NDArray[np.float64],
    track_event: npt.NDArray[np.int64],
    cluster_x: npt.NDArray[np.float64],
    cluster_y: npt.NDArray[np.float64],
    cluster_cell: npt.NDArray[np.float64],
    cluster_offsets: npt.NDArray[np.int64],
    conditions: ConditionSet,
) -> ClusterMatch:
    """The matching of the module docstring. ``lines`` (t, 5) x, y, z, tx, ty of each track's
    T segment (NaN rows: no T segment), ``p`` (t,) MeV, ``track_event`` (t,) batch event of
    each track; clusters of the batch by event (``cluster_offsets``, e + 1) with their
    position (mm) and the cell size (mm) of their seed."""
    n_t, n_c = len(p), len(cluster_x)
    z_sm = conditions.ecal.z_shower_max
    usable = np.flatnonzero(np.isfinite(lines).all(axis=1) & np.isfinite(p) & (p > 0))
    ln = lines[usable]
    tx_, ty_ = ln[:, 3], ln[:, 4]
    ex = ln[:, 0] + tx_ * (z_sm - ln[:, 2])
    ey = ln[:, 1] + ty_ * (z_sm - ln[:, 2])
    sx, sy = track_sigma(p[usable])
    # every (track, cluster of its event) pair
    ev = track_event[usable]
    start, stop = cluster_offsets[ev], cluster_offsets[ev + 1]
    count = stop - start
    rep = np.repeat(np.arange(len(usable)), count)
    cl = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + start[rep]
    var_c = (CLUSTER_SIGMA * cluster_cell[cl]) ** 2
    chi2 = (ex[rep] - cluster_x[cl]) ** 2 / (sx[rep] ** 2 + var_c) + (
        ey[rep] - cluster_y[cl]
    ) ** 2 / (sy[rep] ** 2 + var_c)

    track_cluster = np.full(n_t, -1, dtype=np.int64)
    track_chi2 = np.full(n_t, np.nan)
    cluster_track = np.full(n_c, -1, dtype=np.int64)
    cluster_chi2 = np.full(n_c, np.inf)
    if len(chi2):
        # per track: the pairs are grouped by track, in order
        with_pairs = np.flatnonzero(count > 0)
        starts = np.cumsum(count) - count
        t_min = np.minimum.reduceat(chi2, starts[with_pairs])
        t_best = _first_minimum(chi2, rep, np.repeat(t_min, count[with_pairs]))
        track_cluster[usable[rep[t_best]]] = cl[t_best]
        track_chi2[usable[rep[t_best]]] = chi2[t_best]
        # per cluster
        c_min = np.full(n_c, np.inf)
        np.minimum.at(c_min, cl, chi2)
        c_best = _first_minimum(chi2, cl, c_min[cl])
        cluster_track[cl[c_best]] = usable[rep[c_best]]
        cluster_chi2[cl[c_best]] = chi2[c_best]
    return ClusterMatch(
        track_cluster=track_cluster,
        track_chi2=track_chi2,
        cluster_track=cluster_track,
        cluster_chi2=cluster_chi2,
        photon=cluster_chi2 >= PHOTON_CHI2_MIN,
    )


def _first_minimum(
    value: npt.NDArray[np.float64], group: npt.NDArray[np.int64], minimum: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """For each group, the first pair (in pair order) whose value is the group's minimum."""
    at = np.flatnonzero(value == minimum)
    _, first = np.unique(group[at], return_index=True)
    return at[first]
