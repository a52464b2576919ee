"""Kalman-filter track fit through the field map with thin-layer material, one track per item.

Buffers, float64 unless stated, C-contiguous:
    offsets     (t + 1,) int64   entries of track i are offsets[i] .. offsets[i + 1] − 1, by z
    entries     (h, 8)           z (mm), c, s, value (mm), sigma (mm), x/X0, thickness (mm),
                                 grams (g/cm²): a 1-D measurement value = c·x + s·y with
                                 resolution sigma (sigma ≤ 0: material only), then the thin
                                 layer the particle crosses at z (x/X0 = 0: none)
    entry_material (h,) int64    row of ``materials`` (k, 10) (layout MATERIAL_FIELDS)
    seeds       (t, 6)           x, y, z, tx, ty, qop (mm, e/MeV), any z
    mass        (t,)             mass hypothesis (MeV; |charge| = 1)
    out_first   (t, 6)           full-information state leaving the first entry's layer
    cov_first   (t, 5, 5)        its covariance in (x, y, tx, ty, qop)
    out_beam    (t, 6)           state at the closest approach to the z axis
    cov_beam    (t, 5, 5)        its covariance
    chi2        (t,)  ndof (t,) int64  ok (t,) bool
    (inputs before the outputs: ``foil`` (6,), ``foil_material`` (10,), see below)
A pixel hit is two entries at the same z (x then y; the layer on the first one).

Method: a forward extended Kalman filter from the seed (prior ``_PRIOR``: σ 10 mm, 0.1, 100 %
of qop) gives the reference; a second filter runs backwards from the last entry, started at the
forward result with the same broad prior, so its state at the first entry uses every hit (the
"second filter" form of the smoother; the prior's weight is below 10⁻⁶ of the hits'). χ² and
ndof (measurements − 5) come from the backward filter's predicted residuals. Between entries
the state moves with RK4 (``rk._rk4_segment``, steps ≤ ``step``). The 5×5 Jacobian: the x
column is exact (the field map does not depend on x); where the field cannot bend the track
over the hop (κ·|q/p|·max|B_y|·|Δz| < 10⁻⁷ rad, :func:`hop_kick_bound`: most of the VELO) it
is the straight line's; elsewhere forward finite differences of the transport (shifts
``_EPS``), four extra transports per hop. At each layer (order as the detailed
transport: Bethe mean energy loss, then Highland scattering at the entry momentum):
    qop: |p| changes by dE = bethe_dedx·grams·N (N = √(1 + tx² + ty²)); Jacobian (qop'/qop)²;
         no straggling term;
    noise: θ0 = Highland(p, β, t = N·x/X0); slopes Q_s = θ0²·N²·[[1 + tx², tx·ty],
         [tx·ty, 1 + ty²]]; position (L = N·thickness) Q_pos = L²/3·Q_s/N², cross L/2·Q_s/N
         (PDG eq. 34.20, correlation √3/2).
Forward filter at an entry: predict, layer, update. Backward: predict, update, then the layer
undone (|p| up by dE, same noise) before moving upstream. To the beam line: the first layer
undone, then a straight line (the VELO region is nearly field-free) to z + Δz with
Δz = −(x·tx + y·ty)/(tx² + ty²), Δz held fixed in the Jacobian; on the way, where the line
meets the RF foil (``foil``, (6,) of :mod:`.foil`, with its material row ``foil_material``;
R ≤ 0: none), the wall is undone as a layer there, of x/X0 scaled by
:func:`.foil.foil_plane_factor` (the tracks cross it at a shallow angle).
A track whose transport is lost
(turns back) or whose innovation variance is not positive gets ok = False and NaN outputs.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .field import KAPPA
from .foil import (
    NO_FOIL,
    foil_backward,
    foil_backward_reference,
    foil_plane_factor,
    foil_plane_factor_reference,
)
from .material import _bethe_reference, bethe_dedx, highland_theta0
from .rk import _rk4_segment, transport_reference

__all__ = ["ENTRY_FIELDS", "fit_kalman", "fit_kalman_reference"]

ENTRY_FIELDS = ("z", "c", "s", "value", "sigma", "x_over_x0", "thickness", "grams")
_EPS = np.array([0.1, 0.1, 1e-4, 1e-4, 1e-3])  # qop column: relative
_PRIOR = np.array([10.0, 10.0, 0.1, 0.1, 1.0])  # qop: relative
_IDX = (0, 1, 3, 4, 5)  # 5-vector rows of the 6-vector state


#: Below this |q/p|·max|B_y|·|Δz| (rad; κ included) a hop's Jacobian is the straight line's.
_STRAIGHT_KICK = 1e-7


@nb.njit(cache=True)
def hop_kick_bound(
    z_from: float, z_to: float, qop: float, z0: float, dz: float, by: np.ndarray
) -> float:
    """An upper bound (rad) of the slope change the field can give over [z_from, z_to]:
    κ·|q/p|·max|B_y|·|Δz| over the table cells the hop spans."""
    lo, hi = min(z_from, z_to), max(z_from, z_to)
    n = by.shape[0]
    i_lo = max(0, math.floor((lo - z0) / dz))
    i_hi = min(n - 1, math.ceil((hi - z0) / dz))
    b_max = 0.0
    for i in range(i_lo, i_hi + 1):
        b_max = max(b_max, abs(by[i]))
    return KAPPA * abs(qop) * b_max * (hi - lo)


@nb.njit(cache=True)
def _propagate(
    s: np.ndarray,
    z_to: float,
    step: float,
    z0: float,
    dz: float,
    by: np.ndarray,
    jac: np.ndarray,
    nominal: np.ndarray,
    w: np.ndarray,
) -> bool:
    """Move ``s`` (6,) to ``z_to``; fill ``jac`` (5, 5) (module docstring); ``nominal`` and
    ``w`` (6,) are scratch."""
    jac[:, :] = 0.0
    jac[0, 0] = 1.0  # the field does not depend on x: a shift in x stays a shift in x
    if z_to == s[2]:
        for a in range(5):
            jac[a, a] = 1.0
        return True
    if hop_kick_bound(s[2], z_to, s[5], z0, dz, by) < _STRAIGHT_KICK:
        dzh = z_to - s[2]
        for a in range(5):
            jac[a, a] = 1.0
        jac[0, 2] = jac[1, 3] = dzh
        return _rk4_segment(s, z_to, step, z0, dz, by)
    idx = (0, 1, 3, 4, 5)
    nominal[:] = s
    if not _rk4_segment(nominal, z_to, step, z0, dz, by):
        return False
    for col in range(1, 5):
        h = _EPS[col] * (abs(s[5]) if col == 4 else 1.0)
        w[:] = s
        w[idx[col]] += h
        if not _rk4_segment(w, z_to, step, z0, dz, by):
            return False
        for row in range(5):
            jac[row, col] = (w[idx[row]] - nominal[idx[row]]) / h
    s[:] = nominal
    return True


@nb.njit(cache=True)
def _layer(
    s: np.ndarray, c: np.ndarray, e: np.ndarray, mat: np.ndarray, mass: float, forward: bool
) -> None:
    """Energy loss (sign by direction) and scattering noise of the layer of entry ``e``."""
    if e[5] <= 0.0:
        return
    tx, ty = s[3], s[4]
    n2 = 1.0 + tx * tx + ty * ty
    nf = math.sqrt(n2)
    qop = s[5]
    p = 1.0 / abs(qop)
    p_entry = p
    if e[7] > 0.0:
        de = bethe_dedx(p / mass, mass, 1.0, mat) * e[7] * nf
        p_new = p - de if forward else p + de
        p_entry = p if forward else p_new
        qop_new = math.copysign(1.0 / p_new, qop)
        f = (qop_new / qop) ** 2
        for a in range(5):
            c[4, a] *= f
            c[a, 4] *= f
        s[5] = qop_new
    beta = p_entry / math.sqrt(p_entry * p_entry + mass * mass)
    th = highland_theta0(p_entry, beta, 1.0, e[5] * nf)
    q = th * th * n2
    length = e[6] * nf
    f_pos = length * length / 3.0 / n2
    f_cross = 0.5 * length / nf
    for a in range(2):
        for b in range(2):
            qs = q * (1.0 + (tx * tx if a == 0 else ty * ty)) if a == b else q * tx * ty
            c[a, b] += f_pos * qs
            c[a, 2 + b] += f_cross * qs
            c[2 + a, b] += f_cross * qs
            c[2 + a, 2 + b] += qs


@nb.njit(cache=True)
def _update(s: np.ndarray, c: np.ndarray, e: np.ndarray, hc: np.ndarray) -> float:
    """Kalman update with the 1-D measurement of ``e``; returns its χ² (−1 if not positive);
    ``hc`` (5,) is scratch."""
    if e[4] <= 0.0:
        return 0.0
    for a in range(5):
        hc[a] = e[1] * c[0, a] + e[2] * c[1, a]  # H·C
    r_var = e[1] * hc[0] + e[2] * hc[1] + e[4] * e[4]
    if not r_var > 0.0:
        return -1.0
    res = e[3] - (e[1] * s[0] + e[2] * s[1])
    idx = (0, 1, 3, 4, 5)
    for a in range(5):
        s[idx[a]] += hc[a] / r_var * res
    for a in range(5):
        for b in range(5):
            c[a, b] -= hc[a] / r_var * hc[b]
    for a in range(5):
        for b in range(a):
            m = 0.5 * (c[a, b] + c[b, a])
            c[a, b] = m
            c[b, a] = m
    return res * res / r_var


@nb.njit(cache=True)
def _similarity(c: np.ndarray, jac: np.ndarray, tmp: np.ndarray) -> None:
    """c ← jac·c·jacᵀ in place (5×5, symmetric result); ``tmp`` (5, 5) is scratch."""
    for a in range(5):
        for b in range(5):
            acc = 0.0
            for k in range(5):
                acc += jac[a, k] * c[k, b]
            tmp[a, b] = acc
    for a in range(5):
        for b in range(a, 5):
            acc = 0.0
            for k in range(5):
                acc += tmp[a, k] * jac[b, k]
            c[a, b] = acc
            c[b, a] = acc


@nb.njit(cache=True)
def _reset(c: np.ndarray, qop: float) -> None:
    c[:, :] = 0.0
    for a in range(4):
        c[a, a] = _PRIOR[a] ** 2
    c[4, 4] = (_PRIOR[4] * qop) ** 2


@nb.njit(cache=True)
def _fit_one(
    entries: np.ndarray,
    mats: np.ndarray,
    seed: np.ndarray,
    mass: float,
    step: float,
    z0: float,
    dz: float,
    by: np.ndarray,
    s: np.ndarray,
    c: np.ndarray,
    beam: np.ndarray,
    cb: np.ndarray,
    foil: np.ndarray,
    foil_material: np.ndarray,
) -> tuple:
    """Fit one track; fills the first-entry (s, c) and beam (beam, cb) results."""
    n = entries.shape[0]
    jac = np.empty((5, 5))
    tmp = np.empty((5, 5))
    hc = np.empty(5)
    nominal = np.empty(6)
    w = np.empty(6)
    s[:] = seed
    _reset(c, s[5])
    for k in range(n):  # forward filter
        e = entries[k]
        if not _propagate(s, e[0], step, z0, dz, by, jac, nominal, w):
            return False, 0.0, 0
        _similarity(c, jac, tmp)
        _layer(s, c, e, mats[k], mass, True)
        if _update(s, c, e, hc) < 0.0:
            return False, 0.0, 0
    _reset(c, s[5])
    chi2 = 0.0
    ndof = -5
    for k in range(n - 1, -1, -1):  # backward filter
        e = entries[k]
        if k < n - 1:
            _layer(s, c, entries[k + 1], mats[k + 1], mass, False)
            if not _propagate(s, e[0], step, z0, dz, by, jac, nominal, w):
                return False, 0.0, 0
            _similarity(c, jac, tmp)
        r = _update(s, c, e, hc)
        if r < 0.0:
            return False, 0.0, 0
        chi2 += r
        if e[4] > 0.0:
            ndof += 1
    beam[:] = s
    cb[:, :] = c
    _layer(beam, cb, entries[0], mats[0], mass, False)
    dzf = foil_backward(beam[0], beam[1], beam[2], beam[3], beam[4], foil)
    if not math.isnan(dzf):  # back to the RF foil, its material undone, then on
        _straight(beam, cb, dzf, jac, tmp)
        wall = np.zeros(8)
        wall[0] = beam[2]
        wall[5] = foil_plane_factor(beam[0], beam[1], beam[3], beam[4], foil) * foil[4]
        wall[7] = wall[5] * foil_material[3]  # g/cm²
        wall[6] = 10.0 * wall[7] / foil_material[1]  # mm
        _layer(beam, cb, wall, foil_material, mass, False)
    tx, ty = beam[3], beam[4]
    t2 = tx * tx + ty * ty
    dzb = -(beam[0] * tx + beam[1] * ty) / t2 if t2 > 0.0 else 0.0
    _straight(beam, cb, dzb, jac, tmp)
    return True, chi2, ndof


@nb.njit(cache=True)
def _straight(s: np.ndarray, c: np.ndarray, dz: float, jac: np.ndarray, tmp: np.ndarray) -> None:
    """Move ``s`` by ``dz`` along its straight line, ``c`` with it (Δz held fixed)."""
    s[0] += s[3] * dz
    s[1] += s[4] * dz
    s[2] += dz
    for a in range(5):
        jac[a, :] = 0.0
        jac[a, a] = 1.0
    jac[0, 2] = dz
    jac[1, 3] = dz
    _similarity(c, jac, tmp)


@nb.njit(cache=True, parallel=True)
def fit_kalman(
    offsets: np.ndarray,
    entries: np.ndarray,
    entry_material: np.ndarray,
    materials: np.ndarray,
    seeds: np.ndarray,
    mass: np.ndarray,
    z0: float,
    dz: float,
    by_table: np.ndarray,
    step: float,
    foil: np.ndarray,
    foil_material: np.ndarray,
    out_first: np.ndarray,
    cov_first: np.ndarray,
    out_beam: np.ndarray,
    cov_beam: np.ndarray,
    chi2: np.ndarray,
    ndof: np.ndarray,
    ok: np.ndarray,
) -> None:
    """Fit every track (module docstring); outputs are filled in place."""
    for i in nb.prange(offsets.shape[0] - 1):
        lo, hi = offsets[i], offsets[i + 1]
        mats = np.empty((hi - lo, materials.shape[1]))
        for k in range(hi - lo):
            mats[k] = materials[entry_material[lo + k]]
        good = False
        x2, nd = 0.0, 0
        if hi - lo > 0:
            good, x2, nd = _fit_one(
                entries[lo:hi],
                mats,
                seeds[i],
                mass[i],
                step,
                z0,
                dz,
                by_table,
                out_first[i],
                cov_first[i],
                out_beam[i],
                cov_beam[i],
                foil,
                foil_material,
            )
        ok[i] = good
        chi2[i] = x2 if good else np.nan
        ndof[i] = nd
        if not good:
            out_first[i, :] = np.nan
            cov_first[i, :, :] = np.nan
            out_beam[i, :] = np.nan
            cov_beam[i, :, :] = np.nan


def _layer_reference(
    s: np.ndarray, c: np.ndarray, e: np.ndarray, mat: np.ndarray, mass: float, forward: bool
) -> None:
    if e[5] <= 0.0:
        return
    tx, ty, qop = float(s[3]), float(s[4]), float(s[5])
    n2 = 1.0 + tx * tx + ty * ty
    nf = math.sqrt(n2)
    p = 1.0 / abs(qop)
    p_entry = p
    if e[7] > 0.0:
        de = _bethe_reference(p / mass, mass, 1.0, mat.tolist()) * e[7] * nf
        p_new = p - de if forward else p + de
        p_entry = p if forward else p_new
        qop_new = math.copysign(1.0 / p_new, qop)
        jq = np.eye(5)
        jq[4, 4] = (qop_new / qop) ** 2
        c[:] = jq @ c @ jq
        s[5] = qop_new
    beta = p_entry / math.hypot(p_entry, mass)
    t = e[5] * nf
    corr = max(1.0 + 0.038 * math.log(t / beta**2), 0.0)
    theta0 = 13.6 / (beta * p_entry) * math.sqrt(t) * corr
    qs = theta0**2 * n2 * np.array([[1.0 + tx * tx, tx * ty], [tx * ty, 1.0 + ty * ty]])
    length = e[6] * nf
    noise = np.block(
        [[length**2 / 3.0 * qs / n2, 0.5 * length * qs / nf], [0.5 * length * qs / nf, qs]]
    )
    c[:4, :4] += noise


def _update_reference(s: np.ndarray, c: np.ndarray, e: np.ndarray) -> float:
    if e[4] <= 0.0:
        return 0.0
    h = np.array([e[1], e[2], 0.0, 0.0, 0.0])
    r_var = float(h @ c @ h) + e[4] ** 2
    res = e[3] - (e[1] * s[0] + e[2] * s[1])
    k = c @ h / r_var
    s[list(_IDX)] += k * res
    c[:] = c - np.outer(k, h @ c)
    c[:] = 0.5 * (c + c.T)
    return float(res * res / r_var)


def _propagate_reference(
    s: np.ndarray, z_to: float, step: float, field: tuple[float, float, np.ndarray]
) -> np.ndarray:
    """Twin of :func:`_propagate` in numpy: x column exact, straight-line Jacobian where the
    field cannot bend the track (:func:`hop_kick_bound`), forward differences elsewhere."""
    if z_to == s[2]:
        return np.eye(5)
    cols = list(_IDX)

    def move(v: np.ndarray) -> np.ndarray:
        out = transport_reference(v[None, :], np.array([z_to]), *field, step)[0, 0]
        return np.asarray(out[cols])

    nominal = move(s)
    if hop_kick_bound(float(s[2]), z_to, float(s[5]), *field) < _STRAIGHT_KICK:
        jac = np.eye(5)
        jac[0, 2] = jac[1, 3] = z_to - s[2]
    else:
        jac = np.zeros((5, 5))
        jac[0, 0] = 1.0
        for col in range(1, 5):
            h = float(_EPS[col]) * (abs(s[5]) if col == 4 else 1.0)
            up = s.copy()
            up[cols[col]] += h
            jac[:, col] = (move(up) - nominal) / h
    s[cols] = nominal
    s[2] = z_to
    return jac


def fit_kalman_reference(
    entries: np.ndarray,
    entry_materials: np.ndarray,
    seed: np.ndarray,
    mass: float,
    field: tuple[float, float, np.ndarray],
    step: float,
    foil: np.ndarray = NO_FOIL,
    foil_material: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int]:
    """Plain-numpy twin of :func:`fit_kalman` for one track: entries (h, 8), their material
    rows (h, 10), ``field = (z0, dz, by_table)``, the RF ``foil`` and its material row;
    returns (first, cov_first, beam, cov_beam, χ², ndof). Lost tracks are not handled."""
    if foil_material is None:
        foil_material = entry_materials[0]
    n = len(entries)
    s = np.array(seed, dtype=np.float64)

    def prior(qop: float) -> np.ndarray:
        sig = _PRIOR.copy()
        sig[4] *= abs(qop)
        return np.diag(sig**2)

    c = prior(s[5])
    for k in range(n):
        jac = _propagate_reference(s, entries[k, 0], step, field)
        c = jac @ c @ jac.T
        _layer_reference(s, c, entries[k], entry_materials[k], mass, True)
        _update_reference(s, c, entries[k])
    c = prior(s[5])
    chi2, ndof = 0.0, -5
    for k in range(n - 1, -1, -1):
        if k < n - 1:
            _layer_reference(s, c, entries[k + 1], entry_materials[k + 1], mass, False)
            jac = _propagate_reference(s, entries[k, 0], step, field)
            c = jac @ c @ jac.T
        chi2 += _update_reference(s, c, entries[k])
        ndof += int(entries[k, 4] > 0.0)
    beam, cb = s.copy(), c.copy()
    _layer_reference(beam, cb, entries[0], entry_materials[0], mass, False)

    def straight(dz: float) -> np.ndarray:
        beam[[0, 1, 2]] += [beam[3] * dz, beam[4] * dz, dz]
        jac = np.eye(5)
        jac[0, 2] = jac[1, 3] = dz
        return jac @ cb @ jac.T

    x, y, z, tx, ty = (float(v) for v in beam[:5])
    dzf = foil_backward_reference(x, y, z, tx, ty, foil)
    if not math.isnan(dzf):
        cb = straight(dzf)
        x_over_x0 = foil_plane_factor_reference(beam[0], beam[1], beam[3], beam[4], foil) * foil[4]
        grams = x_over_x0 * foil_material[3]
        wall = np.array([beam[2], 0, 0, 0, 0, x_over_x0, 10.0 * grams / foil_material[1], grams])
        _layer_reference(beam, cb, wall, foil_material, mass, False)
    tx, ty = beam[3], beam[4]
    t2 = tx * tx + ty * ty
    dzb = -(beam[0] * tx + beam[1] * ty) / t2 if t2 > 0.0 else 0.0
    cb = straight(dzb)
    return s, c, beam, cb, chi2, ndof
