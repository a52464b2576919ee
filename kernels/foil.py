"""The RF foil: a thin cylindrical wall around the beam, crossed at a shallow angle.

The foil (LHCb's "RF foil" or "RF box") separates the beam vacuum from the VELO modules. It is
the first material a particle from the luminous region meets, before its first hit. It is
modelled here as a smooth cylindrical shell about the z axis, inner radius R, wall thickness w,
from z_min to z_max. The real foil is corrugated around the interleaved modules; those
corrugations are not modelled.

    foil    (6,) float64 ``FOIL_FIELDS``: R (mm; R ≤ 0: no foil), z_min, z_max (mm), w (mm),
            x/X0 and x/λI of the wall at normal incidence

Only the outward crossing is modelled: a straight line that starts inside the cylinder
(r < R) and reaches r = R between z_min and z_max crosses the wall once. Particles born
outside the cylinder (r ≥ R) cross no foil, even when they head towards the beam.

The chord through the wall is exact for a straight line. If b is the line's distance of
closest approach to the axis in the transverse plane (b < R), its transverse chord through
the shell R … R + w is L_T = √((R + w)² − b²) − √(R² − b²), and the line advances by
L_T / √(tx² + ty²) in z over it. :func:`foil_plane_factor` returns that z advance over w:
the wall acts as a z plane of ``factor`` times its own x/X0 and x/λI, so the material
processes of :mod:`.stepping`, which multiply by N = √(1 + tx² + ty²) for the path along the
track, need no special case. For a line from the axis, factor = 1/tan θ: 20 at θ = 50 mrad.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = [
    "FOIL_FIELDS",
    "NO_FOIL",
    "foil_backward",
    "foil_backward_reference",
    "foil_crossing",
    "foil_crossing_reference",
    "foil_plane_factor",
    "foil_plane_factor_reference",
]

#: Layout of the ``foil`` array.
FOIL_FIELDS = ("radius", "z_min", "z_max", "thickness", "x0", "lambda_i")

#: A ``foil`` array that disables the foil.
NO_FOIL = np.zeros(len(FOIL_FIELDS))
NO_FOIL.setflags(write=False)


@nb.njit(cache=True)
def foil_crossing(
    x: float, y: float, z: float, tx: float, ty: float, z_to: float, foil: np.ndarray
) -> float:
    """Distance in z (≥ 0) from ``z`` to where the straight line from (x, y, z) with slopes
    (tx, ty) reaches the foil's inner surface outward, if that happens at a z in
    [z_min, z_max] and not beyond ``z_to``; NaN otherwise (module docstring)."""
    radius = foil[0]
    if radius <= 0.0:
        return np.nan
    a = tx * tx + ty * ty
    c = x * x + y * y - radius * radius
    if a == 0.0 or c >= 0.0:
        return np.nan
    b = x * tx + y * ty
    dz = (-b + math.sqrt(b * b - a * c)) / a  # the positive root, as c < 0
    zc = z + dz
    if zc > z_to or zc < foil[1] or zc > foil[2]:
        return np.nan
    return dz


@nb.njit(cache=True)
def foil_backward(x: float, y: float, z: float, tx: float, ty: float, foil: np.ndarray) -> float:
    """Distance in z (≤ 0) from ``z`` back to where the line through (x, y, z), outside the
    foil's cylinder and moving outwards (x·tx + y·ty > 0), was at its inner surface, if that z
    lies in [z_min, z_max]; NaN otherwise (the track fit's way back to the beam line)."""
    radius = foil[0]
    if radius <= 0.0:
        return np.nan
    a = tx * tx + ty * ty
    b = x * tx + y * ty
    c = x * x + y * y - radius * radius
    disc = b * b - a * c
    if a == 0.0 or b <= 0.0 or c < 0.0 or disc < 0.0:
        return np.nan
    dz = (-b + math.sqrt(disc)) / a  # the root nearer z, ≤ 0 as b > 0 and c ≥ 0
    zc = z + dz
    if zc < foil[1] or zc > foil[2]:
        return np.nan
    return dz


@nb.njit(cache=True)
def foil_plane_factor(x: float, y: float, tx: float, ty: float, foil: np.ndarray) -> float:
    """z advance of the line through (x, y) with slopes (tx, ty) across the wall, in units of
    the wall thickness (module docstring); 0 for a line parallel to the axis."""
    radius, wall = foil[0], foil[3]
    slope = math.sqrt(tx * tx + ty * ty)
    if slope == 0.0 or wall <= 0.0:
        return 0.0
    b = abs(x * ty - y * tx) / slope
    outer = math.sqrt(max((radius + wall) ** 2 - b * b, 0.0))
    inner = math.sqrt(max(radius * radius - b * b, 0.0))
    return (outer - inner) / slope / wall


def _outward_reference(x: float, y: float, tx: float, ty: float, radius: float) -> float:
    """z advance from (x, y) (inside ``radius``) to where the line reaches ``radius``, by
    bisection on r(d)."""

    def r(d: float) -> float:
        return math.hypot(x + tx * d, y + ty * d)

    hi = 1.0
    while r(hi) < radius:
        hi *= 2.0
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if r(mid) < radius else (lo, mid)
    return 0.5 * (lo + hi)


def foil_crossing_reference(
    x: float, y: float, z: float, tx: float, ty: float, z_to: float, foil: np.ndarray
) -> float:
    """Plain-Python twin of :func:`foil_crossing`, by bisection on r(z) = R."""
    radius, z_min, z_max = float(foil[0]), float(foil[1]), float(foil[2])
    if radius <= 0.0 or math.hypot(x, y) >= radius or (tx == 0.0 and ty == 0.0):
        return math.nan
    dz = _outward_reference(x, y, tx, ty, radius)
    zc = z + dz
    if zc > z_to or zc < z_min or zc > z_max:
        return math.nan
    return dz


def foil_backward_reference(
    x: float, y: float, z: float, tx: float, ty: float, foil: np.ndarray
) -> float:
    """Plain-Python twin of :func:`foil_backward`: from the line's point closest to the axis,
    bisection outwards to the inner surface."""
    radius = float(foil[0])
    if radius <= 0.0 or (tx == 0.0 and ty == 0.0) or x * tx + y * ty <= 0.0:
        return math.nan
    if math.hypot(x, y) < radius:
        return math.nan
    d0 = -(x * tx + y * ty) / (tx * tx + ty * ty)
    xc, yc = x + tx * d0, y + ty * d0
    if math.hypot(xc, yc) > radius:
        return math.nan
    dz = d0 + _outward_reference(xc, yc, tx, ty, radius)
    if not float(foil[1]) <= z + dz <= float(foil[2]):
        return math.nan
    return dz


def foil_plane_factor_reference(
    x: float, y: float, tx: float, ty: float, foil: np.ndarray
) -> float:
    """Plain-Python twin of :func:`foil_plane_factor`: where the line, followed outwards from
    its point closest to the axis, reaches R + w minus where it reaches R, by bisection."""
    radius, wall = float(foil[0]), float(foil[3])
    if (tx == 0.0 and ty == 0.0) or wall <= 0.0:
        return 0.0
    d0 = -(x * tx + y * ty) / (tx * tx + ty * ty)
    xc, yc = x + tx * d0, y + ty * d0
    outer = _outward_reference(xc, yc, tx, ty, radius + wall)
    inner = _outward_reference(xc, yc, tx, ty, radius) if math.hypot(xc, yc) < radius else 0.0
    return (outer - inner) / wall
