"""Covariance matrices as unconstrained network outputs: the log-Cholesky parameterisation.

A d × d covariance C is written C = D (L Lᵀ) D with L lower triangular, D = diag(scale) (the
identity by default). The d(d+1)/2 parameters of one matrix are, in this order,

* θ_i = log L_ii for i = 0 … d−1 (θ_0 = log σ_0 / scale_0; θ_i is the log of coordinate i's
  standard deviation given coordinates 0 … i−1), then
* L_ij for the strictly lower entries, row by row (``np.tril_indices(d, -1)`` order:
  (1,0), (2,0), (2,1), (3,0), …).

Any finite parameters give a symmetric positive-definite C (in exact arithmetic; in floating
point, as long as C's condition number stays well below 1/eps), so a generator that emits θ can
never produce an unphysical track covariance. LHCb's Lamarr emitted 5 log-variances and 10
correlation coefficients instead, which is not positive-definite by construction.

Track state (x, y, tx, ty, q/p) in mm, mm, 1, 1, 1/MeV: the entries span ~15 orders of
magnitude, so pass ``scale`` (a reference σ per coordinate, (d,) or per row (n, d), e.g.
:func:`track_state_scale`) to make θ O(1). Scaling is the same transform on both sides, so a
round trip is exact whatever scale is used.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lamarr_col.errors import InputError

__all__ = [
    "TRACK_STATE",
    "cholesky_factor",
    "from_cholesky_params",
    "n_params",
    "to_cholesky_params",
    "track_state_scale",
]

TRACK_STATE = ("x", "y", "tx", "ty", "qop")

# Symmetry tolerance of to_cholesky_params, relative to sqrt(C_ii C_jj).
SYMMETRY_RTOL = 1e-6


def n_params(d: int) -> int:
    """Number of parameters of a d × d covariance: d(d+1)/2 (15 for the track state)."""
    if d < 1:
        msg = f"n_params: dimension must be ≥ 1, got {d}"
        raise InputError(msg)
    return d * (d + 1) // 2


def _dim(n_par: int, what: str = "covariance parameters") -> int:
    """Inverse of :func:`n_params`; InputError if ``n_par`` is not a triangular number."""
    d = (math.isqrt(8 * n_par + 1) - 1) // 2 if n_par > 0 else 0
    if d < 1 or n_params(d) != n_par:
        msg = (
            f"{what}: {n_par} parameters per row is not d(d+1)/2 for any d "
            "(expected 1, 3, 6, 10, 15, …)"
        )
        raise InputError(msg)
    return d


def _factor(xp: ModuleType, params: Any, scale: Any) -> Any:
    """(n, d(d+1)/2) → D L (n, d, d) with ``xp`` = numpy or jax.numpy (one formula, two
    backends)."""
    d = _dim(params.shape[-1])
    rows, cols = np.tril_indices(d, -1)
    n = params.shape[0]
    diag = xp.exp(params[:, :d])
    chol: Any
    if xp is np:
        chol = np.zeros((n, d, d), params.dtype)
        chol[:, np.arange(d), np.arange(d)] = diag
        chol[:, rows, cols] = params[:, d:]
    else:
        chol = jnp.zeros((n, d, d), params.dtype)
        chol = chol.at[:, np.arange(d), np.arange(d)].set(diag)
        chol = chol.at[:, rows, cols].set(params[:, d:])
    if scale is not None:
        chol = chol * xp.broadcast_to(scale, (n, d))[:, :, None]
    return chol


def _backend(params: Any, scale: Any, what: str) -> tuple[ModuleType, Any, Any]:
    """NumPy float64 for NumPy/list input, jax.numpy for JAX arrays and tracers."""
    if isinstance(params, jax.Array) or isinstance(scale, jax.Array):
        params = jnp.asarray(params)
        if not jnp.issubdtype(params.dtype, jnp.floating):
            params = params.astype(jnp.float32)
        scale = None if scale is None else jnp.asarray(scale, params.dtype)
        xp: ModuleType = jnp
    else:
        params = np.asarray(params, np.float64)
        scale = None if scale is None else np.asarray(scale, np.float64)
        xp = np
    if params.ndim != 2:
        msg = f"{what}: expected (rows, d(d+1)/2) parameters, got shape {params.shape}"
        raise InputError(msg)
    _dim(params.shape[1], what)
    return xp, params, scale


def from_cholesky_params(params: Any, scale: Any = None) -> Any:
    """Parameters (n, d(d+1)/2) → covariances (n, d, d) = D L Lᵀ D, symmetric positive-definite.

    ``scale``: None, (d,) or (n, d) reference σ per coordinate (D = diag(scale)), positive.
    NumPy (or list) input is computed in NumPy float64 and returns an ``np.ndarray``; a JAX
    array (or tracer) is computed in ``jax.numpy`` and returns a ``jax.Array``, so this jits,
    vmaps (over a leading axis added on top) and differentiates. No value checks here (they
    would not trace): θ ≳ 44 overflows float32 (≳ 354 float64) to inf.

    Positive-definite exactly; numerically as long as the condition number of L Lᵀ stays well
    below 1/eps (≈ 10⁷ in float32: e.g. |θ|, |L_ij| ≤ 2 for d = 5 is safe, ≤ 3 is not
    always), which is why ``scale`` should make the parameters O(1). To smear a state with
    this covariance use :func:`cholesky_factor` (δ = D L z) rather than re-factorising.
    """
    xp, params, scale = _backend(params, scale, "from_cholesky_params")
    chol = _factor(xp, params, scale)
    cov = chol @ xp.swapaxes(chol, -1, -2)
    # D L Lᵀ D is symmetric in exact arithmetic; symmetrise so rounding never breaks it.
    return 0.5 * (cov + xp.swapaxes(cov, -1, -2))


def cholesky_factor(params: Any, scale: Any = None) -> Any:
    """Parameters (n, d(d+1)/2) → the lower-triangular Cholesky factor D L (n, d, d) of
    :func:`from_cholesky_params`'s covariance (positive diagonal); same backends and ``scale``.
    A Gaussian draw with that covariance is ``(D L) @ z`` for standard-normal z."""
    xp, params, scale = _backend(params, scale, "cholesky_factor")
    return _factor(xp, params, scale)


def to_cholesky_params(cov: Any, scale: Any = None) -> np.ndarray:
    """Covariances (n, d, d) → parameters (n, d(d+1)/2) float64, the inverse of
    :func:`from_cholesky_params` (same ``scale``).

    Raises :class:`InputError` naming the first row that is non-finite, not symmetric
    (|C_ij − C_ji| > 1e-6 √(C_ii C_jj)), not positive-definite (Cholesky fails or a pivot
    ≤ 0), or whose scale is not positive. Always computed in NumPy float64 (it checks
    values, so it does not trace under jit).
    """
    c = np.asarray(cov, np.float64)
    if c.ndim != 3 or c.shape[1] != c.shape[2] or c.shape[1] < 1:
        msg = f"to_cholesky_params: expected (rows, d, d) matrices, got shape {c.shape}"
        raise InputError(msg)
    n, d, _ = c.shape
    if scale is not None:
        s = np.broadcast_to(np.asarray(scale, np.float64), (n, d))
        bad = ~(np.isfinite(s) & (s > 0)).all(axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            msg = f"to_cholesky_params: scale of row {row} is not finite and positive: {s[row]}"
            raise InputError(msg)
        c = c / (s[:, :, None] * s[:, None, :])
    bad = ~np.isfinite(c).all(axis=(1, 2))
    if bad.any():
        row = int(np.argmax(bad))
        msg = f"to_cholesky_params: covariance of row {row} holds a non-finite value"
        raise InputError(msg)
    var = np.abs(np.diagonal(c, axis1=1, axis2=2))
    tol = SYMMETRY_RTOL * np.sqrt(var[:, :, None] * var[:, None, :])
    bad = (np.abs(c - np.swapaxes(c, 1, 2)) > tol).any(axis=(1, 2))
    if bad.any():
        row = int(np.argmax(bad))
        msg = f"to_cholesky_params: covariance of row {row} is not symmetric"
        raise InputError(msg)
    try:
        chol = np.linalg.cholesky(c)
        ok = np.ones(n, bool)
    except np.linalg.LinAlgError:
        # Locate the offending rows one by one (the batched call only says "some row").
        chol = np.zeros_like(c)
        ok = np.zeros(n, bool)
        for i in range(n):
            try:
                chol[i] = np.linalg.cholesky(c[i])
                ok[i] = True
            except np.linalg.LinAlgError:
                break
    diag = np.diagonal(chol, axis1=1, axis2=2)
    bad = ~ok | ~(diag > 0).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        msg = (
            f"to_cholesky_params: covariance of row {row} is not positive-definite "
            f"(eigenvalues {np.linalg.eigvalsh(c[row])})"
        )
        raise InputError(msg)
    rows, cols = np.tril_indices(d, -1)
    return np.concatenate([np.log(diag), chol[:, rows, cols]], axis=1)


def track_state_scale(qop: Any, *, rel_qop: float = 5e-3) -> Any:
    """Reference σ (n, 5) for the track state (x, y, tx, ty, q/p) with q/p in 1/MeV (nonzero).

    (20 µm, 20 µm, 5·10⁻⁴, 5·10⁻⁴, ``rel_qop``·|q/p|): typical sizes at the state closest to
    the beam, σ(q/p) ∝ |q/p| since δp/p is ≈ 0.5 % over the spectrum. It only sets the units of
    θ (θ = 0 ⇔ σ equal to this reference), so rough values are fine. NumPy in → NumPy out,
    JAX in → JAX out.
    """
    xp: ModuleType = jnp if isinstance(qop, jax.Array) else np
    a = xp.abs(xp.asarray(qop))
    ones = xp.ones_like(a)
    return xp.stack([0.02 * ones, 0.02 * ones, 5e-4 * ones, 5e-4 * ones, rel_qop * a], axis=-1)
