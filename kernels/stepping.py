"""The stepping loop of the detailed simulation: RK4 from plane to plane, material at each plane.

Buffers, C-contiguous (n particles, p planes sorted by z):
    states      (n, 6)      float64 x, y, z (mm), tx, ty, qop (e/MeV) at the particle's origin
    charge      (n,)        float64 charge (e); 0: not transported (reason NOT_TRANSPORTED)
    mass        (n,)        float64 mass (MeV)
    kind        (n,)        int8 KIND_OTHER (muons), KIND_HADRON, KIND_ELECTRON (e±)
    end_z       (n,)        float64 z of the particle's own end vertex (mm); NaN: none
    planes      (p, 9)      float64 columns ``PLANE_COLUMNS`` (mm; x/X0; x/λI)
    absorbs     (p,)        bool the plane absorbs what passes outside its active area (magnet)
    material    (p, 10)     float64 the material row of each plane (``MATERIAL_FIELDS``)
    normals     (n, p + 1, 4)   float64 pre-drawn standard normals (multiple scattering)
    uniforms    (n, p + 1, 2)   float64 pre-drawn uniforms: col 0 Landau, col 1 hadronic
                            interaction
    brem_row    (n,)        int64 row of ``brem_uniforms`` for electrons (−1 for others)
    brem_uniforms (n_e, p + 1, BREM_UNIFORMS) float64 pre-drawn uniforms of the electrons' brems
                            (in the three: index j < p for plane j, index p for the RF foil)
    foil        (6,)        float64 the RF foil, ``FOIL_FIELDS`` of :mod:`.foil` (R ≤ 0: none)
    foil_material (10,)     float64 the foil's material row
Outputs (preallocated):
    out         (n, p, 6)   state leaving each plane (after its material); NaN where not reached
    crossed     (n, p)      bool reached the plane inside its active area
    photon      (n, p)      float64 bremsstrahlung photon energy (MeV) emitted at the plane
    stop_z      (n,)        float64 z where the particle stopped (mm); NaN if not transported
    reason      (n,)        int8 one of ``REASONS``
    foil_out    (n, 6)      state leaving the RF foil (or stopped in it); NaN if not crossed
    foil_photon (n,)        float64 bremsstrahlung photon energy (MeV) emitted in the foil

Each particle starts at its origin and is integrated (``_rk4_segment`` of :mod:`.rk`, steps
≤ ``step`` mm) to the next plane downstream of it (a plane at exactly its z included), until
``z_max``, its end vertex (planes at z ≤ end_z are crossed) or a stop. At a plane:
1. outside the active area or in the beam hole: no crossing, no material (the plane's material is
   that of its active element); the particle goes on, unless the plane ``absorbs`` (magnet
   aperture): stop, reason APERTURE.
2. inside: crossing recorded; hadrons interact with probability 1 − exp(−N·x/λI) (stop,
   HADRONIC; the state stored is the one arriving); then Landau-sampled Bethe energy loss in
   x/X0·X0 g/cm² of the plane's material (a particle left without kinetic energy stops:
   RANGED_OUT, qop NaN), Highland multiple scattering with the plane's x/X0 and thickness
   x/X0·X0 (mm), both from the entry state (loss first, so that a particle stopping in a thick
   absorber is not first scattered backwards), and for electrons Bethe–Heitler
   bremsstrahlung in x/X0 (photon energy recorded; an electron left below its mass:
   RANGED_OUT).
3. the RF foil (:mod:`.foil`): on the way to a plane (and before ``z_max`` and its end
   vertex), a particle that leaves the foil's cylinder is integrated to the crossing point and
   goes through the same processes as at a plane inside its active area, with the foil's x/X0
   and x/λI scaled by :func:`.foil.foil_plane_factor` (the wall crossed at a shallow angle);
   stop_z is then the crossing's z. At most one crossing per particle.
A particle that turns back in the field or is scattered backwards cannot be followed in z: LOST
(stop_z is the plane, or foil crossing, it did not reach). Process formulas: :mod:`.material`.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .acceptance import inside_plane
from .foil import foil_crossing, foil_plane_factor
from .material import (
    BREM_UNIFORMS,
    _gamma_variate,
    _table_quantile,
    highland_theta0,
    landau_most_probable,
    landau_xi,
)
from .rk import _rk4_segment

__all__ = [
    "BREM_UNIFORMS",
    "KIND_ELECTRON",
    "KIND_HADRON",
    "KIND_OTHER",
    "PLANE_COLUMNS",
    "REASONS",
    "transport_with_material",
    "transport_with_material_reference",
]

#: Columns of the ``planes`` table.
PLANE_COLUMNS = ("z", "x_max", "y_max", "r_min", "r_max", "hole_x", "hole_y", "x0", "lambda_i")

KIND_OTHER, KIND_HADRON, KIND_ELECTRON = 0, 1, 2

#: Stop reasons (``reason`` codes).
REASONS = {
    "NOT_TRANSPORTED": -1,
    "LEFT": 0,
    "HADRONIC": 1,
    "RANGED_OUT": 2,
    "APERTURE": 3,
    "END_VERTEX": 4,
    "LOST": 5,
    "CONVERTED": 6,  # photons only (kernels.photons)
}
_NOT_TRANSPORTED, _LEFT, _HADRONIC, _RANGED_OUT, _APERTURE, _END_VERTEX, _LOST = (
    -1, 0, 1, 2, 3, 4, 5
)  # fmt: skip


@nb.njit(cache=True)
def _scatter(
    s: np.ndarray,
    charge: float,
    mass: float,
    x_over_x0: float,
    thickness: float,
    g: np.ndarray,
) -> bool:
    """Highland scattering of ``s`` in place (as ``material.multiple_scattering``); False if
    the particle is scattered backwards."""
    tx, ty, qop = s[3], s[4], s[5]
    p = abs(charge / qop)
    beta = p / math.sqrt(p * p + mass * mass)
    nf = math.sqrt(1.0 + tx * tx + ty * ty)
    theta0 = highland_theta0(p, beta, charge, x_over_x0 * nf)
    length = thickness * nf
    th1 = theta0 * g[0]
    th2 = theta0 * g[2]
    d1 = length * theta0 * (g[1] / math.sqrt(12.0) + 0.5 * g[0])
    d2 = length * theta0 * (g[3] / math.sqrt(12.0) + 0.5 * g[2])
    ux, uy, uz = tx / nf, ty / nf, 1.0 / nf
    h = math.sqrt(ux * ux + uz * uz)
    e1x, e1z = uz / h, -ux / h
    e2x, e2y, e2z = -ux * uy / h, h, -uy * uz / h
    t1, t2 = math.tan(th1), math.tan(th2)
    wx = ux + t1 * e1x + t2 * e2x
    wy = uy + t2 * e2y
    wz = uz + t1 * e1z + t2 * e2z
    if wz <= 0.0:
        return False
    ntx, nty = wx / wz, wy / wz
    dz = d1 * e1z + d2 * e2z
    s[0] = s[0] + d1 * e1x + d2 * e2x - dz * ntx
    s[1] = s[1] + d2 * e2y - dz * nty
    s[3], s[4] = ntx, nty
    return True


@nb.njit(cache=True)
def _lose_energy(
    s: np.ndarray,
    charge: float,
    mass: float,
    grams: float,
    mat: np.ndarray,
    u: float,
    table: np.ndarray,
) -> None:
    """Landau-sampled loss in ``grams`` g/cm² (as ``material.energy_loss``); qop NaN if stopped."""
    qop = s[5]
    p = abs(charge / qop)
    energy = math.sqrt(p * p + mass * mass)
    bg = p / mass
    path = grams * math.sqrt(1.0 + s[3] * s[3] + s[4] * s[4])
    xi = landau_xi(bg, charge, path, mat)
    mpv = landau_most_probable(bg, charge, path, mat)
    loss = min(max(mpv + xi * _table_quantile(table, u), 0.0), energy - mass)
    e_after = energy - loss
    p_after = math.sqrt(max(e_after * e_after - mass * mass, 0.0))
    s[5] = math.copysign(1.0, qop) * abs(charge) / p_after if p_after > 0.0 else np.nan


@nb.njit(cache=True)
def _radiate(s: np.ndarray, charge: float, mass: float, x_over_x0: float, u: np.ndarray) -> float:
    """Bethe–Heitler brems (as ``material.bremsstrahlung``); returns the photon energy (MeV)."""
    qop = s[5]
    p = abs(charge / qop)
    energy = math.sqrt(p * p + mass * mass)
    t = x_over_x0 * math.sqrt(1.0 + s[3] * s[3] + s[4] * s[4])
    frac = math.exp(-_gamma_variate(t / math.log(2.0), u))
    e_after = max(frac * energy, mass)
    p_after = math.sqrt(max(e_after * e_after - mass * mass, 0.0))
    s[5] = math.copysign(1.0, qop) * abs(charge) / p_after if p_after > 0.0 else np.nan
    return energy - e_after


_GOING = 127  # _cross_layer: the particle went through


@nb.njit(cache=True)
def _cross_layer(
    s: np.ndarray,
    q: float,
    m: float,
    kind: int,
    x_over_x0: float,
    lam: float,
    mat: np.ndarray,
    u: np.ndarray,
    g: np.ndarray,
    brem_uniforms: np.ndarray,
    brem_row: int,
    j: int,
    table: np.ndarray,
) -> tuple[int, float]:
    """The material of one layer (a z plane of ``x_over_x0``, ``lam``) on ``s`` in place:
    hadronic interaction (``s`` left as it arrived), energy loss, scattering, brems. Returns
    (status, photon energy): status _GOING, _HADRONIC, _RANGED_OUT or _LOST."""
    nf = math.sqrt(1.0 + s[3] * s[3] + s[4] * s[4])
    if kind == KIND_HADRON and u[1] < -math.expm1(-lam * nf):
        return _HADRONIC, 0.0
    photon = 0.0
    if x_over_x0 > 0.0:
        grams = x_over_x0 * mat[3]  # g/cm²
        qop_in = s[5]
        _lose_energy(s, q, m, grams, mat, u[0], table)
        if math.isnan(s[5]):
            return _RANGED_OUT, 0.0
        qop_out, s[5] = s[5], qop_in  # scattering angle from the entry momentum
        scattered = _scatter(s, q, m, x_over_x0, 10.0 * grams / mat[1], g)
        s[5] = qop_out
        if not scattered:
            return _LOST, 0.0
        if kind == KIND_ELECTRON:
            photon = _radiate(s, q, m, x_over_x0, brem_uniforms[brem_row, j])
    if math.isnan(s[5]):
        return _RANGED_OUT, photon
    return _GOING, photon


@nb.njit(cache=True, parallel=True)
def transport_with_material(
    states: np.ndarray,
    charge: np.ndarray,
    mass: np.ndarray,
    kind: np.ndarray,
    end_z: np.ndarray,
    planes: np.ndarray,
    absorbs: np.ndarray,
    material: np.ndarray,
    landau_table: np.ndarray,
    z0: float,
    dz: float,
    by_table: np.ndarray,
    step: float,
    z_max: float,
    normals: np.ndarray,
    uniforms: np.ndarray,
    brem_row: np.ndarray,
    brem_uniforms: np.ndarray,
    foil: np.ndarray,
    foil_material: np.ndarray,
    out: np.ndarray,
    crossed: np.ndarray,
    photon: np.ndarray,
    stop_z: np.ndarray,
    reason: np.ndarray,
    foil_out: np.ndarray,
    foil_photon: np.ndarray,
) -> None:
    """Transport every charged particle through the planes with material (module docstring)."""
    n = states.shape[0]
    p = planes.shape[0]
    plane_z = np.ascontiguousarray(planes[:, 0])
    last_z = min(z_max, plane_z[p - 1]) if p > 0 else z_max
    for i in nb.prange(n):
        out[i, :, :] = np.nan
        crossed[i, :] = False
        photon[i, :] = 0.0
        foil_out[i, :] = np.nan
        foil_photon[i] = 0.0
        foil_done = False
        q, m = charge[i], mass[i]
        if q == 0.0 or states[i, 5] == 0.0 or math.isnan(states[i, 5]):
            stop_z[i] = np.nan
            reason[i] = _NOT_TRANSPORTED
            continue
        s = states[i, :].copy()
        z_end = np.inf if math.isnan(end_z[i]) else end_z[i]
        why = _LEFT
        where = max(last_z, s[2])
        j = np.searchsorted(plane_z, s[2])
        while j < p:
            zj = plane_z[j]
            if not foil_done and s[2] <= foil[2]:  # beyond the foil's end: no crossing
                dzf = foil_crossing(s[0], s[1], s[2], s[3], s[4], min(zj, z_end, z_max), foil)
                if not math.isnan(dzf):
                    foil_done = True
                    zc = s[2] + dzf
                    if not _rk4_segment(s, zc, step, z0, dz, by_table):
                        why, where = _LOST, zc
                        break
                    factor = foil_plane_factor(s[0], s[1], s[3], s[4], foil)
                    status, emitted = _cross_layer(
                        s, q, m, kind[i], factor * foil[4], factor * foil[5], foil_material,
                        uniforms[i, p], normals[i, p], brem_uniforms, brem_row[i], p,
                        landau_table,
                    )  # fmt: skip
                    foil_photon[i] = emitted
                    if status == _LOST:
                        why, where = _LOST, zc
                        break
                    foil_out[i, :] = s
                    if status != _GOING:
                        why, where = status, zc
                        break
            if zj > z_max:
                break
            if zj > z_end:
                why, where = _END_VERTEX, z_end
                break
            if not _rk4_segment(s, zj, step, z0, dz, by_table):
                why, where = _LOST, zj
                break
            pl = planes[j]
            inside = inside_plane(
                s[0], s[1], pl[1], pl[2], pl[3] * pl[3], pl[4] * pl[4], pl[5], pl[6]
            )
            crossed[i, j] = inside
            if not inside:
                out[i, j, :] = s
                if absorbs[j]:
                    why, where = _APERTURE, zj
                    break
                j += 1
                continue
            status, emitted = _cross_layer(
                s, q, m, kind[i], pl[7], pl[8], material[j], uniforms[i, j], normals[i, j],
                brem_uniforms, brem_row[i], j, landau_table,
            )  # fmt: skip
            photon[i, j] = emitted
            if status == _LOST:
                why, where = _LOST, zj
                break
            out[i, j, :] = s
            if status != _GOING:
                why, where = status, zj
                break
            j += 1
        stop_z[i] = where
        reason[i] = why


def transport_with_material_reference(
    states: np.ndarray,
    charge: np.ndarray,
    mass: np.ndarray,
    kind: np.ndarray,
    end_z: np.ndarray,
    planes: np.ndarray,
    absorbs: np.ndarray,
    material: np.ndarray,
    landau_table: np.ndarray,
    z0: float,
    dz: float,
    by_table: np.ndarray,
    step: float,
    z_max: float,
    normals: np.ndarray,
    uniforms: np.ndarray,
    brem_row: np.ndarray,
    brem_uniforms: np.ndarray,
    foil: np.ndarray,
    foil_material: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Plain-Python twin of :func:`transport_with_material`, built from the reference RK
    (one target per segment), the reference material processes and the reference foil
    geometry; returns (out, crossed, photon, stop_z, reason, foil_out, foil_photon)."""
    from .foil import foil_crossing_reference, foil_plane_factor_reference
    from .material import (
        bremsstrahlung_reference,
        energy_loss_reference,
        hadronic_interaction_reference,
        multiple_scattering_reference,
    )
    from .rk import transport_reference

    n, p = len(states), len(planes)
    out = np.full((n, p, 6), np.nan)
    crossed = np.zeros((n, p), dtype=bool)
    photon = np.zeros((n, p))
    stop_z = np.full(n, np.nan)
    reason = np.full(n, _NOT_TRANSPORTED, dtype=np.int8)
    foil_out = np.full((n, 6), np.nan)
    foil_photon = np.zeros(n)
    last_z = min(z_max, float(planes[-1, 0])) if p else z_max

    def layer(
        i: int, s: np.ndarray, x_over_x0: float, lam: float, mat: np.ndarray, j: int
    ) -> tuple[np.ndarray, int, float]:
        """(state, status, photon) after the material of plane j (j = p: the foil)."""
        q, m = charge[i : i + 1], mass[i : i + 1]
        if (
            kind[i] == KIND_HADRON
            and hadronic_interaction_reference(s, lam, uniforms[i, j, 1:2])[0]
        ):
            return s, _HADRONIC, 0.0
        emitted = 0.0
        if x_over_x0 > 0.0:
            grams = x_over_x0 * mat[3]
            lost, _ = energy_loss_reference(s, q, m, grams, mat, uniforms[i, j, 0:1], landau_table)
            if math.isnan(lost[0, 5]):
                return lost, _RANGED_OUT, 0.0
            s = multiple_scattering_reference(
                s, q, m, x_over_x0, 10.0 * grams / mat[1], normals[i, j][None]
            )
            s[0, 5] = lost[0, 5]
            if math.isnan(s[0, 3]):
                return s, _LOST, 0.0
            if kind[i] == KIND_ELECTRON:
                s, ph = bremsstrahlung_reference(
                    s, q, m, x_over_x0, brem_uniforms[brem_row[i], j][None]
                )
                emitted = float(ph[0])
        return s, (_RANGED_OUT if math.isnan(s[0, 5]) else -1), emitted

    for i in range(n):
        if charge[i] == 0.0 or states[i, 5] == 0.0 or math.isnan(states[i, 5]):
            continue
        s = states[i : i + 1].astype(float).copy()
        z_end = math.inf if math.isnan(end_z[i]) else float(end_z[i])
        why, where = _LEFT, max(last_z, float(s[0, 2]))
        foil_done = False
        for j in range(p):
            zj, x_max, y_max, r_min, r_max, hole_x, hole_y, x_over_x0, lam = planes[j].tolist()
            if zj < states[i, 2]:
                continue
            if not foil_done:
                x, y, z, tx, ty = (float(v) for v in s[0, :5])
                dzf = foil_crossing_reference(x, y, z, tx, ty, min(zj, z_end, z_max), foil)
                if not math.isnan(dzf):
                    foil_done = True
                    zc = z + dzf
                    moved = transport_reference(s, np.array([zc]), z0, dz, by_table, step)[0, 0]
                    if math.isnan(moved[0]):
                        why, where = _LOST, zc
                        break
                    s = moved[None].copy()
                    x, y, _, tx, ty = (float(v) for v in s[0, :5])
                    factor = foil_plane_factor_reference(x, y, tx, ty, foil)
                    s, status, foil_photon[i] = layer(
                        i, s, factor * foil[4], factor * foil[5], foil_material, p
                    )
                    if status == _LOST:
                        why, where = _LOST, zc
                        break
                    foil_out[i] = s[0]
                    if status != -1:
                        why, where = status, zc
                        break
            if zj > z_max:
                break
            if zj > z_end:
                why, where = _END_VERTEX, z_end
                break
            moved = transport_reference(s, np.array([zj]), z0, dz, by_table, step)[0, 0]
            if math.isnan(moved[0]):
                why, where = _LOST, zj
                break
            s = moved[None].copy()
            x, y = float(s[0, 0]), float(s[0, 1])
            r = math.hypot(x, y)
            inside = (
                abs(x) <= x_max
                and abs(y) <= y_max
                and r_min <= r <= r_max
                and not (abs(x) < hole_x and abs(y) < hole_y)
            )
            crossed[i, j] = inside
            out[i, j] = s[0]
            if not inside:
                if absorbs[j]:
                    why, where = _APERTURE, zj
                    break
                continue
            s, status, photon[i, j] = layer(i, s, x_over_x0, lam, material[j], j)
            if status == _LOST:
                out[i, j] = np.nan
                why, where = _LOST, zj
                break
            out[i, j] = s[0]
            if status != -1:
                why, where = status, zj
                break
        stop_z[i], reason[i] = where, why
    return out, crossed, photon, stop_z, reason, foil_out, foil_photon
