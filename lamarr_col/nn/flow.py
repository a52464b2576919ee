"""Conditional normalizing flow with rational-quadratic spline couplings.

Method (Durkan, Bekasov, Murray, Papamakarios 2019, "Neural Spline Flows"). The flow is a
bijection z = f(y; c) from a target row y ∈ R^d to a base point z ∈ R^d, given a condition row
c ∈ R^k, with z ~ N(0, I); then log p(y | c) = log N(f(y; c); 0, I) + log |det ∂f/∂y|.
f is a stack of coupling layers. Each layer keeps some columns y_a and moves the others y_b:
every moved column goes through its own monotonic rational-quadratic spline
(:mod:`lamarr_col.nn.spline`), whose parameters a residual MLP computes from (y_a, c). The
Jacobian is triangular, so its log-determinant is the sum of the splines' log-derivatives, and
the inverse (sampling) is closed-form too. Layer l keeps the h = ⌊d/2⌋ columns starting at
column l·h (mod d) and moves the rest, i.e. the column order rotates by h between layers, so
any two consecutive layers move every column; with d = 1 every layer moves the column given c
alone.

The flow works in the normal space of the quantile preprocessing (each column ≈ N(0, 1)):
:func:`lamarr_col.nn.flow_training.fit_flow` fits the maps, trains the flow by weighted
maximum likelihood and wraps it in a :class:`~lamarr_col.nn.generator.ConditionalGenerator`.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from lamarr_col.errors import ConfigError
from lamarr_col.nn.classifier import ResidualMLP
from lamarr_col.nn.spline import MIN_BIN, rq_spline

__all__ = ["SplineFlow"]

_ARCH_DEFAULTS: dict[str, Any] = {
    "n_layers": 4,
    "n_bins": 8,
    "bound": 4.0,
    "width": 64,
    "depth": 2,
    "activation": "silu",
}
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class _Coupling(eqx.Module):
    """One coupling layer: ``moved`` columns through splines conditioned on (``kept``, c)."""

    net: ResidualMLP
    kept: tuple[int, ...] = eqx.field(static=True)
    moved: tuple[int, ...] = eqx.field(static=True)
    n_bins: int = eqx.field(static=True)
    bound: float = eqx.field(static=True)

    def __call__(self, y: jax.Array, c: jax.Array, *, inverse: bool) -> tuple[jax.Array, jax.Array]:
        n, k = y.shape[0], self.n_bins
        kept = np.asarray(self.kept, np.intp)
        moved = np.asarray(self.moved, np.intp)
        h = jnp.concatenate([y[:, kept], c], axis=1)
        if h.shape[1] == 0:  # one target and no condition: an unconditional spline
            h = jnp.zeros((n, 1), jnp.float32)
        raw = jax.vmap(self.net)(h).reshape(n, len(moved), 3 * k - 1)
        widths, heights, derivatives = raw[..., :k], raw[..., k : 2 * k], raw[..., 2 * k :]
        out, log_det = rq_spline(
            y[:, moved], widths, heights, derivatives, self.bound, inverse=inverse
        )
        return y.at[:, moved].set(out), jnp.sum(log_det, axis=1)


class SplineFlow(eqx.Module):
    """Conditional spline flow between targets y (n, d) and base points z (n, d) ~ N(0, I),
    given conditions c (n, k); all in the quantile maps' normal space, float32."""

    layers: tuple[_Coupling, ...]
    n_targets: int = eqx.field(static=True)
    n_conditions: int = eqx.field(static=True)
    n_bins: int = eqx.field(static=True)
    bound: float = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        n_targets: int,
        n_conditions: int,
        *,
        n_layers: int = 4,
        n_bins: int = 8,
        bound: float = 4.0,
        width: int = 64,
        depth: int = 2,
        activation: str = "silu",
        key: jax.Array,
    ) -> None:
        if n_targets < 1 or n_conditions < 0 or n_layers < 1:
            msg = (
                f"SplineFlow: n_targets={n_targets} and n_layers={n_layers} must be ≥ 1, "
                f"n_conditions={n_conditions} ≥ 0"
            )
            raise ConfigError(msg)
        if not 2 <= n_bins < 1.0 / MIN_BIN or not 0.0 < bound < math.inf:
            msg = f"SplineFlow: n_bins={n_bins} must be in [2, 1000) and bound={bound} > 0"
            raise ConfigError(msg)
        half = n_targets // 2
        layers = []
        for layer, k in enumerate(jax.random.split(key, n_layers)):
            order = np.roll(np.arange(n_targets), -layer * half)
            kept = tuple(int(j) for j in order[:half])
            moved = tuple(int(j) for j in order[half:])
            net = ResidualMLP(
                max(half + n_conditions, 1),
                len(moved) * (3 * n_bins - 1),
                width=width,
                depth=depth,
                activation=activation,
                key=k,
            )
            layers.append(_Coupling(net, kept, moved, int(n_bins), float(bound)))
        self.layers = tuple(layers)
        self.n_targets = int(n_targets)
        self.n_conditions = int(n_conditions)
        self.n_bins = int(n_bins)
        self.bound = float(bound)
        self.width = int(width)
        self.depth = int(depth)
        self.activation = str(activation)

    def architecture(self) -> dict[str, Any]:
        """JSON-able hyperparameters: ``SplineFlow.from_architecture`` rebuilds the structure."""
        return {
            "n_targets": self.n_targets,
            "n_conditions": self.n_conditions,
            "n_layers": len(self.layers),
            "n_bins": self.n_bins,
            "bound": self.bound,
            "width": self.width,
            "depth": self.depth,
            "activation": self.activation,
        }

    @classmethod
    def from_architecture(cls, arch: dict[str, Any], *, key: jax.Array) -> SplineFlow:
        """A flow of the given :meth:`architecture` with fresh weights from ``key``."""
        allowed = ("n_targets", "n_conditions", *_ARCH_DEFAULTS)
        unknown = sorted(set(arch) - set(allowed))
        missing = [name for name in ("n_targets", "n_conditions") if name not in arch]
        if unknown or missing:
            msg = (
                f"SplineFlow architecture: unknown keys {unknown}, missing {missing}; "
                f"allowed: {', '.join(allowed)}"
            )
            raise ConfigError(msg)
        a = {**_ARCH_DEFAULTS, **arch}
        return cls(
            int(a["n_targets"]),
            int(a["n_conditions"]),
            n_layers=int(a["n_layers"]),
            n_bins=int(a["n_bins"]),
            bound=float(a["bound"]),
            width=int(a["width"]),
            depth=int(a["depth"]),
            activation=str(a["activation"]),
            key=key,
        )

    def transform(
        self, y: jax.typing.ArrayLike, c: jax.typing.ArrayLike
    ) -> tuple[jax.Array, jax.Array]:
        """Targets (n, d), conditions (n, k) → base points (n, d), log |det ∂z/∂y| (n,)."""
        z = jnp.asarray(y, jnp.float32)
        c = jnp.asarray(c, jnp.float32)
        total = jnp.zeros(z.shape[0], jnp.float32)
        for layer in self.layers:
            z, log_det = layer(z, c, inverse=False)
            total = total + log_det
        return z, total

    def inverse(
        self, z: jax.typing.ArrayLike, c: jax.typing.ArrayLike
    ) -> tuple[jax.Array, jax.Array]:
        """Base points (n, d), conditions (n, k) → targets (n, d), log |det ∂y/∂z| (n,)."""
        y = jnp.asarray(z, jnp.float32)
        c = jnp.asarray(c, jnp.float32)
        total = jnp.zeros(y.shape[0], jnp.float32)
        for layer in reversed(self.layers):
            y, log_det = layer(y, c, inverse=True)
            total = total + log_det
        return y, total

    def log_prob(self, y: jax.typing.ArrayLike, c: jax.typing.ArrayLike) -> jax.Array:
        """log p(y | c) (n,) in nats, of preprocessed targets (n, d) given conditions (n, k)."""
        z, log_det = self.transform(y, c)
        return log_det - 0.5 * jnp.sum(z * z, axis=1) - self.n_targets * _HALF_LOG_2PI

    def sample(self, key: jax.Array, c: jax.typing.ArrayLike) -> jax.Array:
        """One draw (n, d) per condition row (n, k); row i's noise comes from
        ``fold_in(key, i)``, so a single row (1, k) draws from ``fold_in(key, 0)``."""
        c = jnp.asarray(c, jnp.float32)
        rows = jnp.arange(c.shape[0], dtype=jnp.uint32)
        z = jax.vmap(
            lambda i: jax.random.normal(jax.random.fold_in(key, i), (self.n_targets,), jnp.float32)
        )(rows)
        return self.inverse(z, c)[0]
