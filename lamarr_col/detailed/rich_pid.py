"""RICH particle identification of the reconstructed tracks: DLLs from the photons of the event.

For each read-out radiator (:func:`.rich_photons.radiators`) and each track with a momentum
(long, upstream and downstream tracks in RICH1; long and downstream tracks in RICH2):

1. the track's direction through the radiator from the reconstruction only: the fitted state
   at its first hit taken through the field to the radiator's entrance, middle and exit
   (RICH1); beyond the magnet (RICH2), x and tx from the straight line of its T hits and y,
   ty from the fitted state taken through the field (the T stations measure y only through
   their stereo layers, ten times worse than x; the VELO fixes ty, which the vertical field
   leaves almost unchanged); the track is in the radiator when both its entrance and exit
   points lie inside the RICH's acceptance;
2. for each mass hypothesis e, μ, π, K, p, from the reconstructed momentum: the expected
   Cherenkov angle (cos θ = 1/(nβ)) and photon yield (``photoelectrons · sin²θ/sin²θmax``; 0
   below threshold);
3. every photon of the event in that radiator, from any particle or noise, can belong to any
   track: the global event likelihood of :func:`lamarr_col.kernels.rich.rich_likelihood`
   (rings of all tracks at their current best hypotheses over a background) gives each
   track's log-likelihood differences to the pion;
4. the background is local, as LHCb estimates it per photodetector: the detector plane is cut
   into ``[rich.*] background_regions`` squares (:func:`local_background`), and a photon's
   background density is the photons of its square that the tracks' rings do not account
   for, over the square's area, at least the noise density. Photons of particles without a
   track (secondaries, low-momentum and out-of-acceptance particles) crowd the middle of the
   plane, where most rings lie; a flat background would take them for ring photons there.
   The first estimate takes every ring at the pion hypothesis; after one pass of the
   likelihood, the second takes each ring at its track's most likely hypothesis, and two
   more passes give the DLLs (LHCb also alternates background and likelihood).

The DLLs of the radiators add up (the photons of the two RICHes are independent). A track in
no radiator has no RICH information (flag false, DLLs 0); a hypothesis is "above threshold"
when it would radiate in at least one radiator the track crosses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.rich_photons import RichPhotons, plane_half_widths
from lamarr_col.detector.conditions import ConditionSet, Rich, RichRadiator
from lamarr_col.kernels.rich import rich_likelihood
from lamarr_col.kernels.rk import transport

__all__ = [
    "HYPOTHESES",
    "MASSES",
    "PION",
    "RichPid",
    "expected_rings",
    "local_background",
    "radiator_states",
    "track_likelihoods",
    "track_resolution",
]

#: Mass hypotheses, in the order of the DLL columns (MeV) [PDG]
HYPOTHESES = ("e", "mu", "pi", "k", "p")
MASSES = np.array([0.51099895, 105.6583755, 139.57039, 493.677, 938.27208816])
PION = 2
#: Half width of a ring's photon window, in per-photon resolutions
WINDOW = 4.0
#: Passes of the global likelihood after each estimate of the background (1: every other
#: track a pion): the first estimate takes every ring at the pion hypothesis, the second at
#: each track's most likely hypothesis of the first pass, as LHCb iterates its background
BACKGROUND_PASSES = (1, 2)
#: Azimuthal points per ring when sharing its expected photons among the regions
_RING_POINTS = 16


@dataclass(frozen=True)
class RichPid:
    """Per track (t,): ``dll`` (t, 5) over HYPOTHESES (π column 0), ``used`` (t, r) whether
    each radiator saw the track, ``above`` (t, 5) hypothesis above threshold in a radiator the
    track crossed, ``best`` (t,) int8 the most likely hypothesis (π without information)."""

    dll: npt.NDArray[np.float64]
    used: npt.NDArray[np.bool_]
    above: npt.NDArray[np.bool_]
    best: npt.NDArray[np.int8]


def expected_rings(
    p: npt.NDArray[np.float64], radiator: RichRadiator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Expected angle θ (t, 5) (rad, 0 below threshold) and yield N (t, 5) per hypothesis for
    momenta ``p`` (MeV)."""
    beta = p[:, None] / np.sqrt(p[:, None] ** 2 + MASSES[None, :] ** 2)
    nb = radiator.n * beta
    above = nb > 1.0
    sin2 = np.where(above, 1.0 - 1.0 / np.where(above, nb * nb, 1.0), 0.0)
    n_exp = radiator.photoelectrons * sin2 / (1.0 - 1.0 / radiator.n**2)
    return np.arcsin(np.sqrt(sin2)), n_exp


def track_resolution(
    p: npt.NDArray[np.float64], rich: Rich, radiator: RichRadiator
) -> npt.NDArray[np.float64]:
    """Expected spread (rad) of a track's photon angles around its ring for momenta ``p``
    (MeV): the per-photon resolution ⊕ the track's change of direction through the RICH's own
    material (Highland, ``rich.x0`` radiation lengths, β = 1), which the reconstructed
    direction cannot follow (a few tenths of a mrad at 10 GeV, the per-photon term dominates
    above)."""
    t = max(rich.x0, 1e-6)
    theta0 = 13.6 / p * np.sqrt(t) * (1.0 + 0.038 * np.log(t))
    return np.sqrt(radiator.resolution**2 + theta0**2)


def _inside(rich: Rich, x: npt.NDArray, y: npt.NDArray, z: float) -> npt.NDArray[np.bool_]:
    ax, ay = np.abs(x), np.abs(y)
    outer = (ax <= rich.tx_max * z) & (ay <= rich.ty_max * z)
    hole = (ax < rich.tx_min * z) & (ay < rich.ty_min * z)
    return outer & ~hole


def radiator_states(
    first: npt.NDArray[np.float64],
    conditions: ConditionSet,
    radiator: RichRadiator,
    t_lines: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """States (t, 3, 6) at the radiator's entrance, middle and exit from the fitted states
    ``first`` (t, 6) through the field (RK4, 100 mm steps); NaN where a fit failed. With
    ``t_lines`` (t, 5: x, y, z, tx, ty of the T hits), x and tx come from those lines (beyond
    the magnet; y and ty stay the fit's)."""
    z = np.array([radiator.z_min, 0.5 * (radiator.z_min + radiator.z_max), radiator.z_max])
    out = np.full((len(first), 3, 6), np.nan)
    good = np.flatnonzero(np.all(np.isfinite(first), axis=1) & (first[:, 5] != 0.0))
    if len(good):
        fld = conditions.field
        buf = np.empty((len(good), 3, 6))
        transport(np.ascontiguousarray(first[good]), z, fld.z0, fld.dz, fld.by, 100.0, buf)
        out[good] = buf
    if t_lines is not None:
        for k, zk in enumerate(z):
            out[:, k, 0] = t_lines[:, 0] + t_lines[:, 3] * (zk - t_lines[:, 2])
            out[:, k, 3] = t_lines[:, 3]
    return out


def local_background(
    photons: RichPhotons,
    rich: Rich,
    radiator: RichRadiator,
    event: npt.NDArray[np.int64],
    direction: npt.NDArray[np.float64],
    theta: npt.NDArray[np.float64],
    n_expected: npt.NDArray[np.float64],
    regions: int | None = None,
) -> npt.NDArray[np.float64]:
    """Background density (photons / rad²) at each photon of ``photons``.

    ``event`` (t,) batch event of each track, ``direction`` (t, 2) its tx, ty at the radiator,
    ``theta`` and ``n_expected`` (t,) its ring at the hypothesis taken (N = 0: no ring). The
    plane (:func:`plane_half_widths`) is cut into a grid of about ``regions`` squares
    (default ``rich.background_regions``); in each square of each event the density is
    (photons − ring photons expected there) / area, at least the noise density of the plane.
    A ring's expected photons are shared among the squares its circle crosses (16 points in
    azimuth, those off the plane dropped). A photon off the plane or with a non-finite
    coordinate gets the floor."""
    half_x, half_y = plane_half_widths(rich, radiator)
    side = math.sqrt(4.0 * half_x * half_y / (regions or rich.background_regions))
    nx = max(1, round(2.0 * half_x / side))
    ny = max(1, round(2.0 * half_y / side))
    wx, wy = 2.0 * half_x / nx, 2.0 * half_y / ny
    floor = max(rich.noise, 1.0) / (4.0 * half_x * half_y)
    n_events = len(photons.offsets) - 1
    n_cells = nx * ny

    def cells(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Region of each point, −1 off the plane (NaN included)."""
        with np.errstate(invalid="ignore"):
            ix = np.floor((x + half_x) / wx)
            iy = np.floor((y + half_y) / wy)
            on = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        return np.where(on, np.where(on, ix, 0) * ny + np.where(on, iy, 0), -1).astype(np.int64)

    ph_event = np.repeat(np.arange(n_events), np.diff(photons.offsets))
    ph_cell = cells(photons.x, photons.y)
    on = ph_cell >= 0
    count = np.bincount(ph_event[on] * n_cells + ph_cell[on], minlength=n_events * n_cells).astype(
        np.float64
    )
    phi = 2.0 * np.pi * (np.arange(_RING_POINTS) + 0.5) / _RING_POINTS
    ring = n_expected > 0.0
    r = theta[ring, None]
    pt_cell = cells(
        direction[ring, 0, None] + r * np.cos(phi), direction[ring, 1, None] + r * np.sin(phi)
    )
    pt_event = np.broadcast_to(event[ring, None], pt_cell.shape)
    pt_n = np.broadcast_to(n_expected[ring, None] / _RING_POINTS, pt_cell.shape)
    hit = pt_cell >= 0
    count -= np.bincount(
        pt_event[hit] * n_cells + pt_cell[hit], pt_n[hit], minlength=n_events * n_cells
    )
    density = np.maximum(count / (wx * wy), floor)
    return np.where(on, density[ph_event * n_cells + np.maximum(ph_cell, 0)], floor)


def track_likelihoods(
    photons: RichPhotons,
    rich: Rich,
    radiator: RichRadiator,
    event: npt.NDArray[np.int64],
    p: npt.NDArray[np.float64],
    entrance: npt.NDArray[np.float64],
    middle: npt.NDArray[np.float64],
    exit_: npt.NDArray[np.float64],
    usable: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """DLL (t, 5), used (t,) and above-threshold (t, 5) of the tracks in one radiator.

    ``event`` (t,) batch event of each track (sorted), ``p`` (t,) reconstructed momentum
    (MeV), ``entrance``, ``middle``, ``exit_`` (t, ≥5) reconstructed x, y, z, tx, ty there,
    ``usable`` (t,) the tracks with a momentum measurement."""
    n = len(p)
    used = (
        usable
        & np.isfinite(p)
        & np.all(np.isfinite(middle[:, :5]), axis=1)
        & _inside(rich, entrance[:, 0], entrance[:, 1], radiator.z_min)
        & _inside(rich, exit_[:, 0], exit_[:, 1], radiator.z_max)
    )
    theta, n_exp = expected_rings(np.where(used, p, 1.0), radiator)
    n_exp[~used] = 0.0
    above = n_exp > 0.0
    sel = np.flatnonzero(used)
    n_events = len(photons.offsets) - 1
    track_offsets = np.searchsorted(event[sel], np.arange(n_events + 1)).astype(np.int64)
    direction = np.ascontiguousarray(middle[sel][:, 3:5])
    xy = np.ascontiguousarray(np.stack([photons.x, photons.y], axis=1))
    theta_s = np.ascontiguousarray(theta[sel])
    n_s = np.ascontiguousarray(n_exp[sel])
    sigma = track_resolution(p[sel], rich, radiator)
    dll = np.zeros((len(sel), len(HYPOTHESES)))
    best = np.full(len(sel), PION, dtype=np.int8)
    rows = np.arange(len(sel))
    for passes in BACKGROUND_PASSES:
        # the background of the rings at each track's most likely hypothesis so far
        background = local_background(
            photons, rich, radiator, event[sel], direction, theta_s[rows, best], n_s[rows, best]
        )
        rich_likelihood(
            xy,
            photons.offsets,
            direction,
            track_offsets,
            theta_s,
            n_s,
            sigma,
            background,
            PION,
            WINDOW,
            passes,
            dll,
            best,
        )
    out = np.zeros((n, len(HYPOTHESES)))
    out[sel] = dll
    return out, used, above
