"""Quantile-to-normal input preprocessing, stored as knots so it jits and ships with the weights.

Each continuous column is mapped through its empirical CDF (piecewise linear between
``n_knots`` quantiles) and then through Φ⁻¹, so a fitted column comes out ≈ standard normal
whatever its units. Flag columns (``passthrough``) are copied unchanged. NaN is *not* handled:
callers check their inputs with :func:`check_finite` first (a NaN would propagate to the output).

Point masses ("atoms"): a generated quantity can take one exact value for a finite fraction of
rows (a RICH DLL of 0 below every threshold, a muon log-likelihood read from a binned table).
A map fitted with ``atoms=True`` records each value v holding at least ``ATOM_MASS`` of a
column's rows with its CDF step [F(v⁻), F(v)]. Forward, x = v maps to the middle of the step,
or, given a ``key``, uniformly across it (dequantisation: the training targets of a generator
then have a density in normal space); inverse, every z whose Φ(z) falls in the step gives back
exactly v, so a model reproduces the point masses.

Support: a map fitted with ``support=True`` (a generator's targets) records each column's
range in the fitted rows, [min, max], and :meth:`QuantileNormal.inverse` clips to it. With
``linear`` tails the inverse is otherwise unbounded, and a generator would now and then draw
what the training sample never holds: a negative χ²/ndof, a probability above 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from lamarr_col.errors import ConfigError, InputError

__all__ = ["ATOM_MASS", "TAILS", "QuantileNormal", "check_finite", "row_weights"]

# Extrapolation beyond the outermost knots stops at TAIL × the outermost knot's probability,
# i.e. probabilities stay within [0.5·TAIL/n_knots, 1 − 0.5·TAIL/n_knots] and outputs finite.
TAIL = 0.1
#: what happens beyond the outermost knots (:class:`QuantileNormal`)
TAILS = ("clip", "linear")
#: the smallest fraction of a column's rows on one exact value that makes it an atom
ATOM_MASS = 2e-3
#: the most atoms kept per column (the heaviest)
MAX_ATOMS = 128
#: probabilities of atom columns stay within [ATOM_EPS, 1 − ATOM_EPS] (|z| ≤ 4.75)
ATOM_EPS = 1e-6


def check_finite(x: np.ndarray, names: Sequence[str] | None = None, *, what: str = "input") -> None:
    """Raise :class:`InputError` if ``x`` holds NaN or ±inf.

    ``x``: (n, d) array; ``names``: the d column names used in the message (default
    ``column j``); ``what``: how to name the array (e.g. a file or model). The message names the
    first bad row, its first bad column and the value.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        msg = f"{what}: expected a 2-d (rows, columns) array, got shape {x.shape}"
        raise InputError(msg)
    finite = np.isfinite(x)
    if finite.all():
        return
    bad = ~finite
    row = int(np.argmax(bad.any(axis=1)))
    col = int(np.argmax(bad[row]))
    name = names[col] if names is not None and col < len(names) else f"column {col}"
    n_cols = int(bad.any(axis=0).sum())
    more = f" ({n_cols - 1} other column(s) too)" if n_cols > 1 else ""
    msg = (
        f"{what}: {name!r} holds a non-finite value ({x[row, col]}) at row {row}{more}; "
        "remove or fill such rows before evaluating or training a network"
    )
    raise InputError(msg)


def row_weights(weights: object, n: int, what: str) -> np.ndarray:
    """Per-row weights (n,) float64: ones when ``weights`` is None, else checked to be finite
    and ≥ 0, one per row; :class:`InputError` names ``what`` and the first bad row."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, np.float64)
    if w.shape != (n,):
        msg = f"{what} has shape {w.shape}, expected ({n},)"
        raise InputError(msg)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        row = int(np.argmax(bad))
        msg = f"{what}[{row}] = {w[row]} (row {row}); weights must be finite and ≥ 0"
        raise InputError(msg)
    return w


def _strictly_increasing(q: np.ndarray) -> np.ndarray:
    """Sorted quantiles (float64) → strictly increasing float32 knots.

    A run of tied quantiles at v is spread symmetrically over ±¼ of the gap to its nearest
    distinct neighbour, so x == v maps to the middle of the run's probabilities; a final pass
    in float32 bumps any remaining tie by one ulp.
    """
    q = np.array(q, dtype=np.float64)
    values, starts, counts = np.unique(q, return_index=True, return_counts=True)
    for i, (v, start, count) in enumerate(zip(values, starts, counts, strict=True)):
        if count < 2:
            continue
        gaps = []
        if i > 0:
            gaps.append(v - values[i - 1])
        if i + 1 < len(values):
            gaps.append(values[i + 1] - v)
        half = 0.25 * min(gaps) if gaps else max(abs(v), 1.0) * 1e-3
        q[start : start + count] = v + half * np.linspace(-1.0, 1.0, count)
    out = q.astype(np.float32)
    for i in range(1, len(out)):
        if out[i] <= out[i - 1]:
            out[i] = np.nextafter(out[i - 1], np.float32(np.inf))
    return out


def _atom_masses(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The atoms of one column: their float32 values (ascending) and fractions of the rows."""
    values, counts = np.unique(column.astype(np.float32), return_counts=True)
    heavy = np.flatnonzero(counts >= ATOM_MASS * len(column))
    heavy = np.sort(heavy[np.argsort(counts[heavy])[::-1][:MAX_ATOMS]])
    return values[heavy], counts[heavy] / len(column)


class QuantileNormal(eqx.Module):
    """Per-column quantile → standard-normal map.

    Arrays (all float32, serialised with the weights): ``knots`` (d, n_knots), strictly
    increasing per column, in the column's own units; ``probs`` (n_knots,), the CDF value at
    each knot, ``(i + 0.5) / n_knots``; ``passthrough`` (d,), 1 where the column is copied.
    Calling it maps a (n, d) array to (n, d) float32, each fitted column ≈ N(0, 1) and bounded
    by ±Φ⁻¹(1 − 0.5·TAIL/n_knots) (±3.16 for 64 knots). NaN inputs give NaN: check first.
    """

    knots: jax.Array
    probs: jax.Array
    passthrough: jax.Array
    #: beyond the outermost knots: "clip" (z bounded, the classifiers' inputs) or "linear"
    #: (the end segments continued in z, unbounded both ways: generated targets keep tails)
    tails: str = eqx.field(static=True, default="clip")
    #: point masses (column, value, F(value⁻), F(value)), sorted; see the module's doc
    atoms: tuple[tuple[int, float, float, float], ...] = eqx.field(static=True, default=())
    #: per column (min, max) of the fitted rows, which :meth:`inverse` clips to; () for none
    support: tuple[tuple[float, float], ...] = eqx.field(static=True, default=())

    def __check_init__(self) -> None:
        if self.tails not in TAILS:
            msg = f"QuantileNormal: tails must be one of {', '.join(TAILS)}, got {self.tails!r}"
            raise ConfigError(msg)
        for atom in self.atoms:
            j, _, lo, hi = atom
            if not (0 <= int(j) < self.knots.shape[0] and 0.0 <= lo < hi <= 1.0):
                msg = f"QuantileNormal: bad atom {atom} (column, value, F(v⁻) < F(v) in [0, 1])"
                raise ConfigError(msg)
        if self.support and (
            len(self.support) != self.knots.shape[0] or any(not lo <= hi for lo, hi in self.support)
        ):
            msg = (
                f"QuantileNormal: support needs one (min, max) with min ≤ max for each of the "
                f"{self.knots.shape[0]} columns, got {self.support}"
            )
            raise ConfigError(msg)

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        n_knots: int = 64,
        passthrough: Sequence[bool] | None = None,
        tails: str = "clip",
        *,
        atoms: bool = False,
        support: bool = False,
    ) -> QuantileNormal:
        """Fit the knots to the rows of ``x`` (n, d); ``passthrough[j]`` marks flag columns;
        ``tails`` as the class says; ``atoms``: record the point masses of the fitted columns
        (values holding ≥ ``ATOM_MASS`` of the rows, at most ``MAX_ATOMS`` per column);
        ``support``: record each column's [min, max], which the inverse then clips to."""
        x = np.asarray(x, dtype=np.float64)
        check_finite(x, what="QuantileNormal.fit")
        n, d = x.shape
        if n == 0:
            msg = "QuantileNormal.fit: no rows to fit"
            raise InputError(msg)
        if int(n_knots) < 2:
            msg = f"QuantileNormal.fit: n_knots must be at least 2, got {n_knots}"
            raise ConfigError(msg)
        flags = np.zeros(d, bool) if passthrough is None else np.asarray(passthrough, bool)
        if flags.shape != (d,):
            msg = f"QuantileNormal.fit: passthrough has {flags.size} entries for {d} columns"
            raise ConfigError(msg)
        probs = (np.arange(n_knots) + 0.5) / n_knots
        quantiles = np.quantile(x, probs, axis=0).T  # (d, n_knots)
        knots = np.empty((d, n_knots), np.float32)
        for j in range(d):
            # Flag columns never use their knots; keep dummy increasing ones.
            knots[j] = probs if flags[j] else _strictly_increasing(quantiles[j])
        masses = {int(j): _atom_masses(x[:, j]) for j in np.flatnonzero(~flags)} if atoms else {}
        for j, (values, _) in masses.items():
            rest = x[~np.isin(x[:, j].astype(np.float32), values), j]
            if len(values) and len(rest) >= 2:  # knots of the continuous part alone
                knots[j] = _strictly_increasing(np.quantile(rest, probs))
        fitted = cls(
            knots=jnp.asarray(knots),
            probs=jnp.asarray(probs, jnp.float32),
            passthrough=jnp.asarray(flags, jnp.float32),
            tails=tails,
            support=(
                tuple(
                    (float(lo), float(hi))
                    for lo, hi in zip(
                        x.min(axis=0).astype(np.float32),
                        x.max(axis=0).astype(np.float32),
                        strict=True,
                    )
                )
                if support
                else ()
            ),
        )
        found = []
        for j, (values, mass) in masses.items():
            if not len(values):
                continue
            probe = np.zeros((len(values), d), np.float32)
            probe[:, j] = values
            below = np.concatenate([[0.0], np.cumsum(mass)[:-1]])
            cdf = np.asarray(jax.scipy.stats.norm.cdf(fitted._continuous(jnp.asarray(probe))))
            lo = below + (1.0 - mass.sum()) * cdf[:, j].astype(np.float64)
            found += [  # (clipped: sums of fractions round a hair beyond [0, 1])
                (int(j), float(v), float(np.clip(a, 0.0, 1.0)), float(np.clip(a + m, 0.0, 1.0)))
                for v, a, m in zip(values, lo, mass, strict=True)
            ]
        return dataclasses.replace(fitted, atoms=tuple(found)) if found else fitted

    @classmethod
    def skeleton(
        cls,
        n_inputs: int,
        n_knots: int,
        tails: str = "clip",
        atoms: Sequence[Sequence[float]] = (),
        support: Sequence[Sequence[float]] = (),
    ) -> QuantileNormal:
        """A zero-filled instance of the right shapes (and the given ``atoms``, as
        :meth:`atom_list` gives them, and ``support``), to load weights into."""
        return cls(
            knots=jnp.zeros((n_inputs, n_knots), jnp.float32),
            probs=jnp.zeros((n_knots,), jnp.float32),
            passthrough=jnp.zeros((n_inputs,), jnp.float32),
            tails=tails,
            atoms=tuple((int(a[0]), float(a[1]), float(a[2]), float(a[3])) for a in atoms),
            support=tuple((float(lo), float(hi)) for lo, hi in support),
        )

    def atom_list(self) -> list[list[float]]:
        """The atoms as JSON-able lists [column, value, F(value⁻), F(value)]."""
        return [[int(j), float(v), float(lo), float(hi)] for j, v, lo, hi in self.atoms]

    def _atoms_by_column(self) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """column → (values, F(v⁻), F(v)) of its atoms, float32 constants."""
        out = {}
        for j in sorted({a[0] for a in self.atoms}):
            mine = [a for a in self.atoms if a[0] == j]
            out[j] = tuple(np.array([a[i] for a in mine], np.float32) for i in (1, 2, 3))
        return out  # type: ignore[return-value]

    @property
    def n_inputs(self) -> int:
        return int(self.knots.shape[0])

    @property
    def n_knots(self) -> int:
        return int(self.knots.shape[1])

    def __call__(self, x: jax.typing.ArrayLike, key: jax.Array | None = None) -> jax.Array:
        """(n, d) inputs → (n, d) float32 preprocessed features (jit-friendly). An atom's
        value maps to the middle of its CDF step, or with ``key`` uniformly across it."""
        x = jnp.asarray(x, jnp.float32)
        z = self._continuous(x)
        for j, (v, lo, hi) in self._atoms_by_column().items():
            mass = hi - lo
            xj = x[:, j, None]
            p = jnp.sum(jnp.where(xj > v, mass, 0.0), axis=1)
            p = p + (1.0 - mass.sum()) * jax.scipy.stats.norm.cdf(z[:, j])
            on = xj == v  # (n, atoms of column j)
            u = 0.5 if key is None else jax.random.uniform(jax.random.fold_in(key, j), on.shape)
            p = jnp.where(on.any(axis=1), jnp.sum(jnp.where(on, lo + u * mass, 0.0), axis=1), p)
            z = z.at[:, j].set(ndtri(jnp.clip(p, ATOM_EPS, 1.0 - ATOM_EPS)))
        return jnp.where(self.passthrough > 0.5, x, z)

    def _continuous(self, x: jax.Array) -> jax.Array:
        """z of the knots' piecewise-linear CDF (the continuous part of an atom column)."""
        d, n_knots = self.knots.shape
        # Branch-free binary search with flat gathers (≈ 3× faster than a vmapped
        # jnp.searchsorted on CPU): count = number of knots ≤ x, per element.
        padded = jnp.concatenate([self.knots, jnp.full((d, 1), jnp.inf, jnp.float32)], axis=1)
        flat = padded.T.reshape(-1)  # element (k, j) at k·d + j
        cols = jnp.arange(d, dtype=jnp.int32)[None, :]
        count = jnp.zeros(x.shape, jnp.int32)
        step = 1 << (n_knots.bit_length() - 1)
        while step:
            candidate = count + step
            knot = flat[jnp.minimum(candidate - 1, n_knots) * d + cols]
            count = jnp.where(knot <= x, candidate, count)
            step //= 2
        # The end segments are reused outside the knots: linear extrapolation.
        i = jnp.clip(count - 1, 0, n_knots - 2)
        k0 = flat[i * d + cols]
        k1 = flat[(i + 1) * d + cols]
        p0 = self.probs[i]
        p1 = self.probs[i + 1]
        p = p0 + (x - k0) * ((p1 - p0) / (k1 - k0))
        low = 0.5 * TAIL / n_knots
        z = ndtri(jnp.clip(p, low, 1.0 - low))
        if self.tails == "linear":
            z = jnp.where(count == 0, self._edge(x, 0, 1), z)
            z = jnp.where(count == n_knots, self._edge(x, n_knots - 1, n_knots - 2), z)
        return z

    def _edge(self, x: jax.Array, i: int, j: int) -> jax.Array:
        """z on the line through the knots i (outermost) and j, continued beyond knot i."""
        zi, zj = ndtri(self.probs[i]), ndtri(self.probs[j])
        ki, kj = self.knots[:, i], self.knots[:, j]
        return zi + (x - ki) * ((zi - zj) / (ki - kj))

    def inverse(self, z: jax.typing.ArrayLike) -> jax.Array:
        """(n, d) standard-normal values → (n, d) float32 in the columns' own units: the
        inverse of :meth:`__call__` on its range (with ``clip`` tails the probabilities are
        clipped to the same bounds; with ``linear`` tails the end lines continue, so every z
        has its x, within the map's ``support`` if it has one); passthrough columns are
        copied; a z in an atom's CDF step gives exactly the atom's value."""
        z = jnp.asarray(z, jnp.float32)
        atoms = self._atoms_by_column()
        zc = z
        for j, (_, lo, hi) in atoms.items():
            mass = hi - lo
            p = jax.scipy.stats.norm.cdf(z[:, j, None])
            # the continuous part's probability: the atoms' steps below p taken out
            taken = jnp.sum(jnp.clip(p - lo, 0.0, mass), axis=1)
            pc = (p[:, 0] - taken) / jnp.maximum(1.0 - mass.sum(), ATOM_EPS)
            zc = zc.at[:, j].set(ndtri(jnp.clip(pc, ATOM_EPS, 1.0 - ATOM_EPS)))
        x = self._continuous_inverse(zc)
        for j, (v, lo, hi) in atoms.items():
            p = jax.scipy.stats.norm.cdf(z[:, j, None])
            inside = (p >= lo) & (p < hi)
            value = jnp.sum(jnp.where(inside, v, 0.0), axis=1)
            x = x.at[:, j].set(jnp.where(inside.any(axis=1), value, x[:, j]))
        if self.support:
            lo, hi = np.array(self.support, np.float32).T
            x = jnp.clip(x, lo, hi)
        return jnp.where(self.passthrough > 0.5, z, x)

    def _continuous_inverse(self, z: jax.Array) -> jax.Array:
        """The inverse of :meth:`_continuous`."""
        n_knots = self.knots.shape[1]
        low = 0.5 * TAIL / n_knots
        p = jnp.clip(jax.scipy.stats.norm.cdf(z), low, 1.0 - low)
        # segment index from the (uniform) probability grid: probs[k] = (k + ½) / n_knots
        i = jnp.clip(jnp.floor(p * n_knots - 0.5).astype(jnp.int32), 0, n_knots - 2)
        cols = jnp.arange(self.knots.shape[0], dtype=jnp.int32)[None, :]
        k0 = self.knots[cols, i]
        k1 = self.knots[cols, i + 1]
        p0 = self.probs[i]
        p1 = self.probs[i + 1]
        x = k0 + (p - p0) * ((k1 - k0) / (p1 - p0))
        if self.tails == "linear":
            for e, f in ((0, 1), (n_knots - 1, n_knots - 2)):
                zi, zj = ndtri(self.probs[e]), ndtri(self.probs[f])
                ki, kj = self.knots[:, e], self.knots[:, f]
                beyond = z < zi if e == 0 else z > zi
                x = jnp.where(beyond, ki + (z - zi) * ((ki - kj) / (zi - zj)), x)
        return x
