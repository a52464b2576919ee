"""Monotonic rational-quadratic splines, the element-wise bijections of the spline flows.

Method (Durkan, Bekasov, Murray, Papamakarios 2019, "Neural Spline Flows"). K bins on
[−B, B] with widths and heights from softmaxes (each at least ``MIN_BIN`` of the interval) and
positive derivatives at the K − 1 inner knots, 1 at ±B; the identity outside [−B, B]. Within a
bin the map is a ratio of quadratics, monotonic by construction; the inverse solves one
quadratic. The map is C¹ everywhere and the tails stay standard normal.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["MIN_BIN", "MIN_DERIVATIVE", "rq_spline"]

MIN_BIN = 1e-3  # smallest bin width or height, as a fraction of 2B
MIN_DERIVATIVE = 1e-3
# softplus(raw + shift) + MIN_DERIVATIVE is 1 at raw = 0: a zero network output is the identity
_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def _knots(raw: jax.Array, bound: jax.Array) -> jax.Array:
    """Unconstrained (..., K) → K + 1 increasing knots from −B to B (..., K + 1)."""
    k = raw.shape[-1]
    frac = MIN_BIN + (1.0 - MIN_BIN * k) * jax.nn.softmax(raw, axis=-1)
    inner = 2.0 * bound * jnp.cumsum(frac, axis=-1)[..., :-1] - bound
    end = jnp.ones((*raw.shape[:-1], 1), jnp.float32) * bound
    return jnp.concatenate([-end, inner, end], axis=-1)


def rq_spline(
    x: jax.typing.ArrayLike,
    raw_widths: jax.Array,
    raw_heights: jax.Array,
    raw_derivatives: jax.Array,
    bound: jax.typing.ArrayLike,
    *,
    inverse: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Element-wise monotonic rational-quadratic spline on [−B, B], the identity outside.

    ``x`` (...,): inputs; ``raw_widths``, ``raw_heights`` (..., K) and ``raw_derivatives``
    (..., K − 1): unconstrained parameters of each element's spline; ``bound``: B > 0.
    Returns (outputs (...,), log |d output / d input| (...,)), float32. ``inverse=True``
    applies the inverse spline (its log-derivative is minus the forward one at its output).
    """
    x = jnp.asarray(x, jnp.float32)
    b = jnp.asarray(bound, jnp.float32)
    xk = _knots(raw_widths, b)
    yk = _knots(raw_heights, b)
    one = jnp.ones((*x.shape, 1), jnp.float32)
    inner = MIN_DERIVATIVE + jax.nn.softplus(raw_derivatives + _SHIFT)
    dk = jnp.concatenate([one, inner, one], axis=-1)

    inside = (x > -b) & (x < b)
    xc = jnp.clip(x, -b, b)  # keeps the unused branch finite (and its gradient)
    edges = yk if inverse else xk
    i = jnp.sum(xc[..., None] >= edges[..., 1:-1], axis=-1, keepdims=True)

    def at(a: jax.Array, shift: int) -> jax.Array:
        return jnp.take_along_axis(a, i + shift, axis=-1)[..., 0]

    x0, y0, d0 = at(xk, 0), at(yk, 0), at(dk, 0)
    w = at(xk, 1) - x0
    h = at(yk, 1) - y0
    d1 = at(dk, 1)
    s = h / w
    bend = d0 + d1 - 2.0 * s
    if inverse:
        # y − y0 = h (s ξ² + d0 ξ(1−ξ)) / (s + bend ξ(1−ξ)) is a quadratic a ξ² + b ξ + c = 0;
        # this form of its root in [0, 1] does not cancel (c ≤ 0 and b > 0).
        dy = xc - y0
        qa = h * (s - d0) + dy * bend
        qb = h * d0 - dy * bend
        qc = -s * dy
        root = jnp.sqrt(jnp.maximum(qb * qb - 4.0 * qa * qc, 0.0))
        xi = 2.0 * qc / (-qb - root)  # no clip: its gradient halves at a knot
        out = x0 + xi * w
    else:
        xi = (xc - x0) / w
        out = y0 + h * (s * xi * xi + d0 * xi * (1.0 - xi)) / (s + bend * xi * (1.0 - xi))
    t = xi * (1.0 - xi)
    log_deriv = (
        2.0 * jnp.log(s)
        + jnp.log(d1 * xi * xi + 2.0 * s * t + d0 * (1.0 - xi) ** 2)
        - 2.0 * jnp.log(s + bend * t)
    )
    if inverse:
        log_deriv = -log_deriv
    return jnp.where(inside, out, x), jnp.where(inside, log_deriv, 0.0)
