"""The photon stepping loop of the detailed simulation: straight lines, conversions at the planes.

Buffers, C-contiguous (n photons, p planes sorted by z):
    states      (n, 6)      float64 x, y, z (mm), tx, ty at the photon's origin (col 5 unused);
                            only photons flying downstream (p_z > 0) may be given
    energy      (n,)        float64 photon energy (MeV)
    planes      (p, 9)      float64 columns ``PLANE_COLUMNS`` of :mod:`.stepping` (mm; x/X0)
    absorbs     (p,)        bool the plane absorbs what passes outside its active area (magnet)
    uniforms    (n, 2)      float64 pre-drawn uniforms in (0, 1): col 0 the conversion depth,
                            col 1 the energy sharing of the pair
    foil        (6,)        float64 the RF foil, ``FOIL_FIELDS`` of :mod:`.foil` (R ≤ 0: none)
Outputs (preallocated):
    crossed     (n, p)      bool reached the plane inside its active area
    conv_plane  (n,)        int64 plane where the photon converted, p if in the RF foil, −1 if
                            it did not
    vertex      (n, 3)      float64 x, y, z of the conversion (mm); NaN if it did not convert
    pair        (n, 2)      float64 energies of the positron and the electron (MeV); NaN if
                            the photon did not convert
    stop_z      (n,)        float64 z where the photon stopped or left (mm)
    reason      (n,)        int8 LEFT, APERTURE or CONVERTED of ``REASONS`` (:mod:`.stepping`)

Each photon flies in a straight line from its origin through the planes strictly downstream of
it (a photon born in a plane has left that plane), up to ``z_max``. At a plane, as in the
charged stepping loop: outside the active area or in the beam hole it crosses no material and
goes on, unless the plane ``absorbs`` (magnet aperture: stop, APERTURE); inside, it crosses
t = N·x/X0 of material (N = √(1 + tx² + ty²)). A photon leaving the RF foil's cylinder before
``z_max`` crosses its wall, t = N·factor·x/X0 with the factor of :func:`.foil.foil_plane_factor`,
where the line reaches the cylinder (between the planes it lies between).

Conversions (PDG eq. 34.30): the photon carries a depth D = −ln u₀ drawn once; every layer
takes (7/9)·t from it, and the photon converts in the layer where D falls below zero. The
probability to convert in a layer, once reached, is thus 1 − exp(−(7/9)·t), the same law as
:func:`.material.photon_conversion` with one uniform per layer, but with two uniforms per photon
rather than two per photon and plane (the method of Geant4's "number of interaction lengths
left"). Photons of energy ≤ 2mₑ never convert. The positron takes x = E₊/E_γ from the
complete-screening Bethe–Heitler shape (eq. 34.31) as in :func:`.material.photon_conversion`;
both leptons go along the photon.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .acceptance import inside_plane
from .foil import (
    foil_crossing,
    foil_crossing_reference,
    foil_plane_factor,
    foil_plane_factor_reference,
)
from .material import ELECTRON_MASS, _pair_fraction, _pair_fraction_reference
from .stepping import REASONS

__all__ = ["CONVERSION_FACTOR", "transport_photons", "transport_photons_reference"]

#: Conversion probability per layer 1 − exp(−CONVERSION_FACTOR·t) (PDG eq. 34.30).
CONVERSION_FACTOR = 7.0 / 9.0

_LEFT, _APERTURE, _CONVERTED = REASONS["LEFT"], REASONS["APERTURE"], REASONS["CONVERTED"]


@nb.njit(cache=True, parallel=True)
def transport_photons(
    states: np.ndarray,
    energy: np.ndarray,
    planes: np.ndarray,
    absorbs: np.ndarray,
    z_max: float,
    uniforms: np.ndarray,
    foil: np.ndarray,
    crossed: np.ndarray,
    conv_plane: np.ndarray,
    vertex: np.ndarray,
    pair: np.ndarray,
    stop_z: np.ndarray,
    reason: np.ndarray,
) -> None:
    """Fly every photon through the planes, converting it on the way (module docstring)."""
    n = states.shape[0]
    p = planes.shape[0]
    plane_z = np.ascontiguousarray(planes[:, 0])
    last_z = min(z_max, plane_z[p - 1]) if p > 0 else z_max
    for i in nb.prange(n):
        crossed[i, :] = False
        conv_plane[i] = -1
        for c in range(3):
            vertex[i, c] = np.nan
        pair[i, 0] = np.nan
        pair[i, 1] = np.nan
        x0, y0, z0, tx, ty = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
        e = energy[i]
        depth = -math.log(uniforms[i, 0]) if e > 2.0 * ELECTRON_MASS else np.inf
        nf = math.sqrt(1.0 + tx * tx + ty * ty)
        why = _LEFT
        where = max(last_z, z0)
        j = np.searchsorted(plane_z, z0, side="right")
        z_foil = z0 + foil_crossing(x0, y0, z0, tx, ty, z_max, foil)  # NaN: no crossing
        while j < p or z_foil <= z_max:
            zj = plane_z[j] if j < p else np.inf
            if z_foil <= zj:  # the foil comes first (NaN compares False)
                layer, zl = p, z_foil
                x, y = x0 + tx * (zl - z0), y0 + ty * (zl - z0)
                t = foil_plane_factor(x, y, tx, ty, foil) * foil[4] * nf
                z_foil = np.nan
            else:
                if zj > z_max:
                    break
                layer, zl = j, zj
                x, y = x0 + tx * (zl - z0), y0 + ty * (zl - z0)
                pl = planes[j]
                inside = inside_plane(
                    x, y, pl[1], pl[2], pl[3] * pl[3], pl[4] * pl[4], pl[5], pl[6]
                )
                crossed[i, j] = inside
                j += 1
                if not inside:
                    if absorbs[layer]:
                        why, where = _APERTURE, zl
                        break
                    continue
                t = pl[7] * nf
            if t > 0.0:
                depth -= CONVERSION_FACTOR * t
                if depth < 0.0:
                    x_min = ELECTRON_MASS / e
                    e_plus = (x_min + (1.0 - 2.0 * x_min) * _pair_fraction(uniforms[i, 1])) * e
                    pair[i, 0] = e_plus
                    pair[i, 1] = e - e_plus
                    conv_plane[i] = layer
                    vertex[i, 0], vertex[i, 1], vertex[i, 2] = x, y, zl
                    why, where = _CONVERTED, zl
                    break
        stop_z[i] = where
        reason[i] = why


def transport_photons_reference(
    states: np.ndarray,
    energy: np.ndarray,
    planes: np.ndarray,
    absorbs: np.ndarray,
    z_max: float,
    uniforms: np.ndarray,
    foil: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Plain-Python twin of :func:`transport_photons` (bisection for the pair fraction);
    returns (crossed, conv_plane, vertex, pair, stop_z, reason)."""
    n, p = len(states), len(planes)
    vertex = np.full((n, 3), np.nan)
    crossed = np.zeros((n, p), dtype=bool)
    conv_plane = np.full(n, -1, dtype=np.int64)
    pair = np.full((n, 2), np.nan)
    stop_z = np.full(n, np.nan)
    reason = np.full(n, _LEFT, dtype=np.int8)
    last_z = min(z_max, float(planes[-1, 0])) if p else z_max
    for i in range(n):
        x0, y0, z0, tx, ty = (float(v) for v in states[i, :5])
        e = float(energy[i])
        depth = -math.log(float(uniforms[i, 0])) if e > 2 * ELECTRON_MASS else math.inf
        path = math.sqrt(1 + tx * tx + ty * ty)
        why, where = _LEFT, max(last_z, z0)
        z_foil = z0 + foil_crossing_reference(x0, y0, z0, tx, ty, z_max, foil)
        layers = [(float(z), j) for j, z in enumerate(planes[:, 0]) if z > z0]
        if not math.isnan(z_foil):  # the foil before a plane at the same z
            layers.append((z_foil - 1e-9 * (1.0 + abs(z_foil)), p))
        for _, j in sorted(layers):
            if j == p:
                zl = z_foil
                x, y = x0 + tx * (zl - z0), y0 + ty * (zl - z0)
                t = foil_plane_factor_reference(x, y, tx, ty, foil) * float(foil[4]) * path
            else:
                zl, x_max, y_max, r_min, r_max, hole_x, hole_y, x_over_x0, _ = planes[j].tolist()
                if zl > z_max:
                    break
                x, y = x0 + tx * (zl - z0), y0 + ty * (zl - z0)
                r = math.hypot(x, y)
                inside = (
                    abs(x) <= x_max
                    and abs(y) <= y_max
                    and r_min <= r <= r_max
                    and not (abs(x) < hole_x and abs(y) < hole_y)
                )
                crossed[i, j] = inside
                if not inside:
                    if absorbs[j]:
                        why, where = _APERTURE, zl
                        break
                    continue
                t = x_over_x0 * path
            if t > 0:
                depth -= CONVERSION_FACTOR * t
                if depth < 0:
                    x_min = ELECTRON_MASS / e
                    share = _pair_fraction_reference(float(uniforms[i, 1]))
                    e_plus = (x_min + (1 - 2 * x_min) * share) * e
                    pair[i] = (e_plus, e - e_plus)
                    conv_plane[i] = j
                    vertex[i] = (x, y, zl)
                    why, where = _CONVERTED, zl
                    break
        stop_z[i], reason[i] = where, why
    return crossed, conv_plane, vertex, pair, stop_z, reason
