"""Residual-MLP multi-class classifier and its bulk evaluation with bounded retraces."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.preprocessing import QuantileNormal

__all__ = [
    "ACTIVATIONS",
    "Classifier",
    "ResidualBlock",
    "ResidualMLP",
    "activation_function",
    "predict_proba",
]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
}

MIN_BUCKET = 256

# How many times the bulk-evaluation function was traced (each trace = one compiled shape).
# Diagnostic only: read by the bounded-retrace test, never used to make decisions.
_TRACES = {"predict_proba": 0}


def activation_function(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation called ``name`` (:data:`ACTIVATIONS`); ConfigError naming the others."""
    if name not in ACTIVATIONS:
        msg = f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}"
        raise ConfigError(msg)
    return ACTIVATIONS[name]


class ResidualBlock(eqx.Module):
    """h → h + linear2(act(linear1(h))), width → width."""

    linear1: eqx.nn.Linear
    linear2: eqx.nn.Linear
    activation: str = eqx.field(static=True)

    def __init__(self, width: int, activation: str = "silu", *, key: jax.Array) -> None:
        activation_function(activation)
        k1, k2 = jax.random.split(key)
        self.linear1 = eqx.nn.Linear(width, width, key=k1, dtype=jnp.float32)
        self.linear2 = eqx.nn.Linear(width, width, key=k2, dtype=jnp.float32)
        self.activation = activation

    def __call__(self, h: jax.Array) -> jax.Array:
        return h + self.linear2(ACTIVATIONS[self.activation](self.linear1(h)))


class ResidualMLP(eqx.Module):
    """One row (n_inputs,) → logits (n_classes,): input linear + activation, ``depth``
    residual blocks of width ``width``, output linear."""

    input: eqx.nn.Linear
    blocks: tuple[ResidualBlock, ...]
    output: eqx.nn.Linear
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        *,
        width: int = 64,
        depth: int = 3,
        activation: str = "silu",
        key: jax.Array,
    ) -> None:
        activation_function(activation)
        if min(n_inputs, n_classes, width) < 1 or depth < 0:
            msg = (
                f"ResidualMLP: n_inputs={n_inputs}, n_classes={n_classes}, width={width} must "
                f"be ≥ 1 and depth={depth} ≥ 0"
            )
            raise ConfigError(msg)
        k_in, k_out, *k_blocks = jax.random.split(key, depth + 2)
        self.input = eqx.nn.Linear(n_inputs, width, key=k_in, dtype=jnp.float32)
        self.blocks = tuple(ResidualBlock(width, activation, key=k) for k in k_blocks)
        self.output = eqx.nn.Linear(width, n_classes, key=k_out, dtype=jnp.float32)
        self.activation = activation

    @property
    def n_inputs(self) -> int:
        return int(self.input.weight.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.output.weight.shape[0])

    @property
    def width(self) -> int:
        return int(self.input.weight.shape[0])

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = ACTIVATIONS[self.activation](self.input(x))
        for block in self.blocks:
            h = block(h)
        return self.output(h)


class Classifier(eqx.Module):
    """Preprocessing + network: raw inputs (n, n_inputs) → logits (n, n_classes), float32.

    Inputs must be finite (see :func:`lamarr_col.nn.preprocessing.check_finite`).
    """

    preprocessing: QuantileNormal
    mlp: ResidualMLP

    def __check_init__(self) -> None:
        if self.preprocessing.n_inputs != self.mlp.n_inputs:
            msg = (
                f"Classifier: preprocessing has {self.preprocessing.n_inputs} columns but the "
                f"network takes {self.mlp.n_inputs} inputs"
            )
            raise ConfigError(msg)

    @property
    def n_inputs(self) -> int:
        return self.mlp.n_inputs

    @property
    def n_classes(self) -> int:
        return self.mlp.n_classes

    def __call__(self, x: jax.typing.ArrayLike) -> jax.Array:
        return jax.vmap(self.mlp)(self.preprocessing(x))


@eqx.filter_jit
def _probabilities(classifier: Classifier, x: jax.typing.ArrayLike) -> jax.Array:
    _TRACES["predict_proba"] += 1  # runs at trace time only
    return jax.nn.softmax(classifier(x), axis=-1)


def _next_pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def bucket_size(n_rows: int, batch_size: int = 65536) -> int:
    """The padded size a chunk of ``n_rows`` rows is evaluated at: a power of two in
    [MIN_BUCKET, batch_size rounded up to a power of two]."""
    return min(_next_pow2(max(n_rows, MIN_BUCKET)), _next_pow2(max(batch_size, MIN_BUCKET)))


def predict_proba(
    classifier: Classifier, x: np.ndarray, *, batch_size: int = 65536, in_flight: int = 4
) -> np.ndarray:
    """Class probabilities (n, n_classes) float32 of the rows of ``x`` (n, n_inputs).

    Rows are evaluated in chunks of ``batch_size`` (rounded up to a power of two); the last
    chunk is zero-padded to a power-of-two bucket (≥ 256), so one jitted function compiles at
    most log2(batch_size / 256) + 1 shapes. Up to ``in_flight`` chunks are dispatched ahead.
    Inputs must be finite: NaN rows give NaN probabilities (check with ``check_finite``).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != classifier.n_inputs:
        msg = (
            f"predict_proba: expected an array of shape (rows, {classifier.n_inputs}), "
            f"got {x.shape}"
        )
        raise InputError(msg)
    n = x.shape[0]
    out = np.empty((n, classifier.n_classes), np.float32)
    chunk = bucket_size(n, batch_size) if n else MIN_BUCKET
    pending: deque[tuple[int, int, jax.Array]] = deque()
    for start in range(0, n, chunk):
        rows = x[start : start + chunk]
        m = rows.shape[0]
        size = bucket_size(m, batch_size)
        if size != m:
            rows = np.concatenate([rows, np.zeros((size - m, x.shape[1]), np.float32)])
        pending.append((start, m, _probabilities(classifier, rows)))
        if len(pending) > in_flight:
            s, k, p = pending.popleft()
            out[s : s + k] = np.asarray(p)[:k]
    for s, k, p in pending:
        out[s : s + k] = np.asarray(p)[:k]
    return out
