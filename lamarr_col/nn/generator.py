"""One interface for the conditional generators (GAN generators and normalizing flows).

A conditional generator draws target rows y (n, d) given condition rows c (n, k):
``sample(key, conditions) -> outputs``. Both kinds live in the normal space of the quantile
preprocessing: :class:`ConditionalGenerator` wraps a *core* (a flow or a GAN generator working
on preprocessed conditions and producing preprocessed targets) between the conditions' map and
the inverse of the targets' map, so that every model takes and returns physical units.

A core is an :class:`equinox.Module` with

- ``n_conditions``, ``n_targets`` (ints) and ``architecture() -> dict``: JSON-able
  hyperparameters from which ``from_architecture(arch, key=...)`` rebuilds a module of the
  same structure (to load weights into);
- ``sample(key, c) -> y``: (n, k) preprocessed conditions → (n, d) preprocessed targets.

Randomness: every row draws from ``jax.random.fold_in(key, row_id)`` when ``row_ids`` are
given (the flash pipeline passes a per-particle counter), so a row's draw does not depend on
the batch it is in; without ``row_ids`` the rows of one call use ``fold_in(key, position)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from lamarr_col.errors import InputError
from lamarr_col.nn.classifier import bucket_size
from lamarr_col.nn.preprocessing import QuantileNormal, check_finite

__all__ = ["ConditionalGenerator", "GeneratorCore", "TrainedGenerator", "sample_rows"]


@runtime_checkable
class GeneratorCore(Protocol):
    """What :class:`ConditionalGenerator` needs of a flow or a GAN generator."""

    n_conditions: int
    n_targets: int

    def architecture(self) -> dict[str, Any]: ...

    def sample(self, key: jax.Array, conditions: jax.Array) -> jax.Array: ...


class ConditionalGenerator(eqx.Module):
    """Conditions (physical units) → preprocessing → core → inverse target preprocessing."""

    conditions_map: QuantileNormal
    targets_map: QuantileNormal
    core: Any  # a GeneratorCore (a flow or a GAN generator)

    def __check_init__(self) -> None:
        if self.conditions_map.n_inputs != self.core.n_conditions:
            msg = (
                f"conditions map has {self.conditions_map.n_inputs} columns, the core "
                f"takes {self.core.n_conditions}"
            )
            raise ValueError(msg)
        if self.targets_map.n_inputs != self.core.n_targets:
            msg = (
                f"targets map has {self.targets_map.n_inputs} columns, the core makes "
                f"{self.core.n_targets}"
            )
            raise ValueError(msg)

    @property
    def n_conditions(self) -> int:
        return int(self.core.n_conditions)

    @property
    def n_targets(self) -> int:
        return int(self.core.n_targets)

    def sample(self, key: jax.Array, conditions: jax.typing.ArrayLike) -> jax.Array:
        """(n, k) conditions → (n, d) float32 targets, in physical units (jit-friendly)."""
        c = self.conditions_map(conditions)
        return self.targets_map.inverse(self.core.sample(key, c))


@dataclasses.dataclass(frozen=True)
class TrainedGenerator:
    """What a generator's training returns: the best ``generator`` (by the trainer's
    validation criterion), the per-epoch ``history`` of its losses and criteria, and
    ``metrics`` (validation figures, row and epoch counts)."""

    generator: ConditionalGenerator
    history: dict[str, list[float]]
    metrics: dict[str, Any]


@eqx.filter_jit
def _sample_bucket(
    model: ConditionalGenerator, key: jax.Array, conditions: jax.Array, ids: jax.Array
) -> jax.Array:
    def one(c: jax.Array, row: jax.Array) -> jax.Array:
        return model.sample(jax.random.fold_in(key, row), c[None, :])[0]

    return jax.vmap(one)(conditions, ids)


def sample_rows(
    model: ConditionalGenerator,
    key: jax.Array,
    conditions: np.ndarray,
    *,
    row_ids: np.ndarray | None = None,
    batch_size: int = 65536,
    names: list[str] | None = None,
) -> np.ndarray:
    """Draw one target row per condition row with ``model``: (n, k) → (n, d) float32 numpy.

    Rows are padded to power-of-two buckets (at most ``batch_size`` rows per call), so the
    number of compiled shapes stays bounded; ``row_ids`` (n,) non-negative ints key each
    row's draw (default: the row positions). Non-finite conditions raise
    :class:`~lamarr_col.errors.InputError` naming the column (``names``)."""
    c = np.asarray(conditions, np.float32)
    check_finite(c, names, what="generator conditions")
    if c.shape[1] != model.n_conditions:
        msg = f"generator conditions: {c.shape[1]} columns for a model of {model.n_conditions}"
        raise InputError(msg)
    n = len(c)
    ids = np.arange(n, dtype=np.uint32) if row_ids is None else np.asarray(row_ids, np.uint32)
    if ids.shape != (n,):
        msg = f"row_ids: {ids.shape} for {n} rows"
        raise InputError(msg)
    out = np.empty((n, model.n_targets), np.float32)
    size = bucket_size(n, batch_size) if n else 0
    for start in range(0, n, max(size, 1)):
        stop = min(start + size, n)
        pad = size - (stop - start)
        cb = np.concatenate([c[start:stop], np.repeat(c[:1], pad, axis=0)])
        ib = np.concatenate([ids[start:stop], np.zeros(pad, np.uint32)])
        out[start:stop] = np.asarray(_sample_bucket(model, key, jnp.asarray(cb), jnp.asarray(ib)))[
            : stop - start
        ]
    return out
