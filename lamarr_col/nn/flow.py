"""Conditional normalizing flow with rational-quadratic spline couplings, and its training.

Method (Durkan, Bekasov, Murray, Papamakarios 2019, "Neural Spline Flows"). The flow is a
bijection z = f(y; c) from a target row y ∈ R^d to a base point z ∈ R^d, given a condition row
c ∈ R^k, with z ~ N(0, I); then log p(y | c) = log N(f(y; c); 0, I) + log |det ∂f/∂y|.
f is a stack of coupling layers. Each layer keeps some columns y_a and moves the others y_b:
every moved column goes through its own monotonic rational-quadratic spline, whose parameters
a residual MLP computes from (y_a, c). The Jacobian is triangular, so its log-determinant is
the sum of the splines' log-derivatives, and the inverse (sampling) is closed-form too: one
quadratic per spline bin. Layer l keeps the h = ⌊d/2⌋ columns starting at column l·h (mod d)
and moves the rest, i.e. the column order rotates by h between layers, so any two consecutive
layers move every column; with d = 1 every layer moves the column given c alone.

Spline: K bins on [−B, B] with widths and heights from softmaxes (each at least ``MIN_BIN`` of
the interval) and positive derivatives at the K − 1 inner knots, 1 at ±B; the identity outside
[−B, B]. The map is C¹ everywhere and the tails stay standard normal.

The flow works in the normal space of the quantile preprocessing (each column ≈ N(0, 1),
bounded by ≈ ±3.2 for 64 knots, inside the default B = 4): :func:`fit_flow` fits the maps,
trains the flow by weighted maximum likelihood and wraps it in a
:class:`~lamarr_col.nn.generator.ConditionalGenerator`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.classifier import ResidualMLP, bucket_size
from lamarr_col.nn.generator import ConditionalGenerator, TrainedGenerator
from lamarr_col.nn.preprocessing import QuantileNormal, check_finite
from lamarr_col.nn.training import preprocess_rows

__all__ = ["SplineFlow", "TrainedGenerator", "fit_flow", "log_prob_rows", "rq_spline"]

MIN_BIN = 1e-3  # smallest bin width or height, as a fraction of 2B
MIN_DERIVATIVE = 1e-3
# softplus(raw + shift) + MIN_DERIVATIVE is 1 at raw = 0: a zero network output is the identity
_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))
_ARCH_DEFAULTS: dict[str, Any] = {
    "n_layers": 4,
    "n_bins": 8,
    "bound": 4.0,
    "width": 64,
    "depth": 2,
    "activation": "silu",
}
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


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


class _Hyper(NamedTuple):
    """Static training settings (hashable: one compilation per distinct value)."""

    learning_rate: float
    n_batches: int
    batch_size: int
    max_epochs: int


def _optimizer(h: _Hyper) -> optax.GradientTransformation:
    warmup = min(h.n_batches, 500)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        h.learning_rate,
        warmup_steps=warmup,
        decay_steps=max(h.max_epochs * h.n_batches, warmup + 1),
        end_value=0.02 * h.learning_rate,
    )
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=1e-4))


def _weighted_nll(params: Any, static: Any, y: jax.Array, c: jax.Array, w: jax.Array) -> jax.Array:
    return -jnp.sum(w * eqx.combine(params, static).log_prob(y, c))


@eqx.filter_jit
def _epoch(
    params: Any,
    opt_state: Any,
    static: Any,
    data: tuple[jax.Array, jax.Array, jax.Array],
    key: jax.Array,
    hyper: _Hyper,
) -> tuple[Any, Any, jax.Array]:
    """One pass over a fresh permutation of the training rows, minibatches in a ``lax.scan``;
    returns the mean weighted NLL of the batches."""
    optimizer = _optimizer(hyper)
    y, c, w = data  # w: mean 1 over the training rows
    n, bs = hyper.n_batches, hyper.batch_size
    perm = jax.random.permutation(key, y.shape[0])[: n * bs].reshape(n, bs)

    def step(carry: Any, idx: jax.Array) -> tuple[Any, jax.Array]:
        p, state = carry
        loss, grads = jax.value_and_grad(
            lambda q: _weighted_nll(q, static, y[idx], c[idx], w[idx]) / bs
        )(p)
        updates, state = optimizer.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), perm)
    return params, opt_state, jnp.mean(losses)


@eqx.filter_jit
def _mean_nll(params: Any, static: Any, data: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
    """Weighted mean NLL over chunked rows: y (m, chunk, d), c (m, chunk, k), w (m, chunk)."""
    sums = jax.lax.map(lambda chunk: _weighted_nll(params, static, *chunk), data)
    return jnp.sum(sums) / jnp.sum(data[2])


def _chunked(y: np.ndarray, c: np.ndarray, w: np.ndarray) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Zero-weight padding to whole power-of-two chunks, reshaped (m, chunk, ·)."""
    chunk = bucket_size(len(y), 16384)
    m = -(-len(y) // chunk)
    pad = m * chunk - len(y)

    def padded(a: np.ndarray) -> jax.Array:
        a = np.concatenate([a, np.zeros((pad, *a.shape[1:]), np.float32)])
        return jnp.asarray(a.reshape(m, chunk, *a.shape[1:]))

    return padded(y), padded(c), padded(w.astype(np.float32))


def _check_inputs(
    conditions: np.ndarray,
    targets: np.ndarray,
    sample_weight: np.ndarray | None,
    names: tuple[Sequence[str] | None, Sequence[str] | None],
) -> np.ndarray:
    """Validate the rows; return the weights (float64, one per row)."""
    if conditions.ndim != 2 or targets.ndim != 2 or len(conditions) != len(targets):
        msg = (
            "fit_flow: conditions must be (rows, k) and targets (rows, d) with the same rows; "
            f"got {conditions.shape} and {targets.shape}"
        )
        raise InputError(msg)
    if targets.shape[1] < 1:
        msg = "fit_flow: targets have no columns"
        raise InputError(msg)
    check_finite(conditions, names[0], what="fit_flow: conditions")
    check_finite(targets, names[1], what="fit_flow: targets")
    if sample_weight is None:
        return np.ones(len(targets))
    w = np.asarray(sample_weight, np.float64)
    if w.shape != (len(targets),):
        msg = f"fit_flow: sample_weight has shape {w.shape}, expected ({len(targets)},)"
        raise InputError(msg)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        row = int(np.argmax(bad))
        msg = f"fit_flow: sample_weight[{row}] = {w[row]}; weights must be finite and ≥ 0"
        raise InputError(msg)
    return w


def fit_flow(
    conditions: np.ndarray,
    targets: np.ndarray,
    *,
    key: jax.Array,
    sample_weight: np.ndarray | None = None,
    n_knots: int = 64,
    passthrough_conditions: Sequence[bool] | None = None,
    condition_names: Sequence[str] | None = None,
    target_names: Sequence[str] | None = None,
    n_layers: int = 4,
    n_bins: int = 8,
    bound: float = 4.0,
    width: int = 64,
    depth: int = 2,
    activation: str = "silu",
    learning_rate: float = 1e-3,
    batch_size: int = 1024,
    max_epochs: int = 100,
    patience: int = 8,
    validation_fraction: float = 0.15,
    progress: bool = False,
    target_tails: str = "linear",
) -> TrainedGenerator:
    """Fit a :class:`SplineFlow` generator of ``targets`` (n, d) given ``conditions`` (n, k).

    Everything random (initialisation, validation split, shuffling) derives from ``key``: the
    same key gives bit-identical weights on the same machine. Quantile maps (``n_knots``;
    ``passthrough_conditions`` marks flag columns) are fitted on the training rows; AdamW with
    a warm-up + cosine schedule and gradient clipping minimises the ``sample_weight``-ed NLL in
    their normal space; training stops after ``patience`` epochs without a lower validation
    NLL and keeps the best epoch. ``history``: ``train_nll``, ``val_nll`` per epoch (nats per
    row, normal space); ``metrics``: ``val_nll`` and ``train_nll`` of the best epoch,
    ``best_epoch``, ``epochs``, ``rows``, ``rows_train``, ``rows_validation``, ``n_parameters``.
    The column names only serve the error messages.
    """
    c = np.asarray(conditions, np.float32)
    y = np.asarray(targets, np.float32)
    w = _check_inputs(c, y, sample_weight, (condition_names, target_names))
    if not 0.0 < validation_fraction < 1.0:
        msg = f"fit_flow: validation_fraction must be in (0, 1), got {validation_fraction}"
        raise ConfigError(msg)
    if min(batch_size, max_epochs, patience) < 1 or not learning_rate > 0:
        msg = (
            f"fit_flow: batch_size={batch_size}, max_epochs={max_epochs}, patience={patience} "
            f"must be ≥ 1 and learning_rate={learning_rate} > 0"
        )
        raise ConfigError(msg)
    k_init, k_split, k_shuffle = jax.random.split(key, 3)
    flow = SplineFlow(
        y.shape[1],
        c.shape[1],
        n_layers=n_layers,
        n_bins=n_bins,
        bound=bound,
        width=width,
        depth=depth,
        activation=activation,
        key=k_init,
    )
    n = len(y)
    n_val = max(1, round(n * validation_fraction))
    order = np.asarray(jax.random.permutation(k_split, n))
    val, train = order[:n_val], order[n_val:]
    if len(train) < 2 or w[train].sum() <= 0 or w[val].sum() <= 0:
        msg = (
            f"fit_flow: {n} rows (weights summing to {w.sum():.4g}) are too few to train with a "
            "validation split"
        )
        raise InputError(msg)

    conditions_map = QuantileNormal.fit(c[train], n_knots, passthrough=passthrough_conditions)
    targets_map = QuantileNormal.fit(y[train], n_knots, tails=target_tails)
    zc, zy = preprocess_rows(conditions_map, c), preprocess_rows(targets_map, y)

    bs = min(batch_size, len(train))
    hyper = _Hyper(float(learning_rate), len(train) // bs, bs, int(max_epochs))
    params, static = eqx.partition(flow, eqx.is_inexact_array)
    opt_state = _optimizer(hyper).init(params)
    w_train = (w[train] / w[train].mean()).astype(np.float32)
    train_data = (jnp.asarray(zy[train]), jnp.asarray(zc[train]), jnp.asarray(w_train))
    val_data = _chunked(zy[val], zc[val], w[val] / w[val].mean())

    history: dict[str, list[float]] = {"train_nll": [], "val_nll": []}
    best = (math.inf, params, -1)
    bar = tqdm(range(max_epochs), desc="training flow", unit="epoch", disable=not progress)
    for i in bar:
        params, opt_state, train_nll = _epoch(
            params, opt_state, static, train_data, jax.random.fold_in(k_shuffle, i), hyper
        )
        val_nll = float(_mean_nll(params, static, val_data))
        history["train_nll"].append(float(train_nll))
        history["val_nll"].append(val_nll)
        bar.set_postfix(train=f"{float(train_nll):.4f}", val=f"{val_nll:.4f}")
        if val_nll < best[0]:
            best = (val_nll, params, i)
        elif i - best[2] >= patience or not math.isfinite(val_nll):
            break
    bar.close()
    if best[2] < 0:
        msg = (
            f"fit_flow: the validation NLL is {history['val_nll'][0]} after the first epoch; "
            f"training diverged: lower learning_rate (now {learning_rate})"
        )
        raise ConfigError(msg)

    core = eqx.combine(best[1], static)
    metrics: dict[str, Any] = {
        "val_nll": best[0],
        "train_nll": history["train_nll"][best[2]],
        "best_epoch": best[2],
        "epochs": len(history["val_nll"]),
        "rows": n,
        "rows_train": len(train),
        "rows_validation": n_val,
        "n_parameters": sum(int(a.size) for a in jax.tree_util.tree_leaves(best[1])),
    }
    generator = ConditionalGenerator(conditions_map, targets_map, core)
    return TrainedGenerator(generator=generator, history=history, metrics=metrics)


@eqx.filter_jit
def _log_prob_bucket(model: ConditionalGenerator, c: jax.Array, y: jax.Array) -> jax.Array:
    # The maps act column by column: one forward-mode pass gives every ∂z_j/∂y_j.
    z, dz = jax.jvp(model.targets_map, (y,), (jnp.ones_like(y),))
    return model.core.log_prob(z, model.conditions_map(c)) + jnp.sum(jnp.log(dz), axis=1)


def log_prob_rows(
    model: ConditionalGenerator,
    conditions: np.ndarray,
    targets: np.ndarray,
    *,
    batch_size: int = 65536,
) -> np.ndarray:
    """log p(y | c) (n,) float32 in nats per the targets' physical units, of rows ``targets``
    (n, d) given ``conditions`` (n, k), for a generator whose core has ``log_prob`` (a flow).

    The flow's density in normal space times the targets map's Jacobian; −inf where a target
    lies beyond the map's clipped tails (the model puts no density there)."""
    if not hasattr(model.core, "log_prob"):
        msg = f"log_prob_rows: a {type(model.core).__name__} core has no log_prob (not a flow)"
        raise ConfigError(msg)
    c = np.asarray(conditions, np.float32)
    y = np.asarray(targets, np.float32)
    if c.ndim != 2 or y.ndim != 2 or len(c) != len(y):
        msg = f"log_prob_rows: conditions {c.shape} and targets {y.shape} must be (rows, ·)"
        raise InputError(msg)
    if c.shape[1] != model.n_conditions or y.shape[1] != model.n_targets:
        msg = (
            f"log_prob_rows: {c.shape[1]} condition and {y.shape[1]} target columns for a "
            f"model of {model.n_conditions} and {model.n_targets}"
        )
        raise InputError(msg)
    check_finite(c, what="log_prob_rows: conditions")
    check_finite(y, what="log_prob_rows: targets")
    n = len(y)
    out = np.empty(n, np.float32)
    size = bucket_size(n, batch_size) if n else 0
    for start in range(0, n, max(size, 1)):
        stop = min(start + size, n)
        pad = size - (stop - start)
        cb = np.concatenate([c[start:stop], np.repeat(c[:1], pad, axis=0)])
        yb = np.concatenate([y[start:stop], np.repeat(y[:1], pad, axis=0)])
        out[start:stop] = np.asarray(_log_prob_bucket(model, jnp.asarray(cb), jnp.asarray(yb)))[
            : stop - start
        ]
    return out
