"""One-dimensional distributions sampled by inverting their CDF at keyed uniforms.

Every distribution maps uniforms ``u`` in (0, 1) to values through :meth:`Distribution.ppf`
(the inverse CDF), so a value depends only on the uniform it is given: the callers draw the
uniforms from :class:`lamarr_col.rng.EventKeys` and the results stay independent of batch size.

Option strings (as the CLI takes them; momenta in MeV, angles in radians):

``flat:LO:HI``
    uniform on [LO, HI].
``exp:MEAN`` / ``exp:MEAN:LO:HI``
    density ∝ exp(-x/MEAN) on [0, ∞), or on [LO, HI] when bounds are given (HI may be ``inf``).
    MEAN is the scale of the untruncated exponential, not the mean after truncation.
``fixed:VALUE``
    always VALUE.
``hist:PATH.csv``
    piecewise-uniform histogram from a text file: one line ``low_edge,content`` per bin (comma
    or white space between the two numbers) and a last line holding the upper edge of the last
    bin alone; blank lines and lines starting with ``#`` are skipped.
``hist:FILE.root:NAME``
    the same from a ROOT histogram (TH1) read with uproot; ``NAME`` may contain directories.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lamarr_col.errors import ConfigError

__all__ = [
    "DISTRIBUTION_FORMS",
    "Distribution",
    "Exponential",
    "Fixed",
    "Flat",
    "Histogram",
    "parse_distribution",
    "read_histogram",
]

#: The accepted option-string forms, quoted in error messages.
DISTRIBUTION_FORMS = (
    "flat:LO:HI",
    "exp:MEAN",
    "exp:MEAN:LO:HI",
    "fixed:VALUE",
    "hist:PATH.csv",
    "hist:FILE.root:HISTNAME",
)


class Distribution(abc.ABC):
    """A 1-D distribution with an inverse CDF."""

    @abc.abstractmethod
    def ppf(self, u: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Inverse CDF at uniforms ``u`` in (0, 1); same shape as ``u``."""

    @property
    @abc.abstractmethod
    def support(self) -> tuple[float, float]:
        """Smallest and largest value the distribution can return."""

    @abc.abstractmethod
    def expectation(self) -> float:
        """Expectation value (for checks and summaries)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """The option string that gives this distribution back through parse_distribution."""


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be finite, got {value}")
    return value


@dataclass(frozen=True)
class Flat(Distribution):
    """Uniform on [lo, hi]."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        _finite(self.lo, "flat lower bound")
        _finite(self.hi, "flat upper bound")
        if not self.lo < self.hi:
            raise ConfigError(f"flat needs LO < HI, got {self.lo} and {self.hi}")

    def ppf(self, u: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return self.lo + (self.hi - self.lo) * np.asarray(u, dtype=np.float64)

    @property
    def support(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def expectation(self) -> float:
        return 0.5 * (self.lo + self.hi)

    def describe(self) -> str:
        return f"flat:{self.lo!r}:{self.hi!r}"


@dataclass(frozen=True)
class Exponential(Distribution):
    """Density ∝ exp(-x/mean) on [lo, hi] (defaults: the whole half-line [0, ∞))."""

    mean: float
    lo: float = 0.0
    hi: float = math.inf

    def __post_init__(self) -> None:
        _finite(self.mean, "exponential mean")
        _finite(self.lo, "exponential lower bound")
        if self.mean <= 0:
            raise ConfigError(f"exponential mean must be > 0, got {self.mean}")
        if math.isnan(self.hi) or not self.lo < self.hi:
            raise ConfigError(f"exponential needs LO < HI, got {self.lo} and {self.hi}")

    def ppf(self, u: npt.ArrayLike) -> npt.NDArray[np.float64]:
        u = np.asarray(u, dtype=np.float64)
        # memoryless: a truncated exponential is lo + an exponential truncated at hi - lo;
        # expm1/log1p keep precision when the window is narrow compared with the mean
        kept = -math.expm1(-(self.hi - self.lo) / self.mean)
        return self.lo - self.mean * np.log1p(-u * kept)

    @property
    def support(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def expectation(self) -> float:
        if math.isinf(self.hi):
            return self.lo + self.mean
        w = self.hi - self.lo
        r = w / self.mean
        return self.lo + self.mean - w * math.exp(-r) / -math.expm1(-r)

    def describe(self) -> str:
        if self.lo == 0.0 and math.isinf(self.hi):
            return f"exp:{self.mean!r}"
        return f"exp:{self.mean!r}:{self.lo!r}:{self.hi!r}"


@dataclass(frozen=True)
class Fixed(Distribution):
    """Always the same value."""

    value: float

    def __post_init__(self) -> None:
        _finite(self.value, "fixed value")

    def ppf(self, u: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.full(np.shape(u), self.value, dtype=np.float64)

    @property
    def support(self) -> tuple[float, float]:
        return (self.value, self.value)

    def expectation(self) -> float:
        return self.value

    def describe(self) -> str:
        return f"fixed:{self.value!r}"


@dataclass(frozen=True, eq=False)
class Histogram(Distribution):
    """Piecewise-uniform density: ``contents[i]`` spread evenly over [edges[i], edges[i+1]].

    ``source`` is the option string the histogram came from (kept for :meth:`describe`).
    """

    edges: npt.NDArray[np.float64]
    contents: npt.NDArray[np.float64]
    source: str = ""
    _cdf: npt.NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        edges = np.asarray(self.edges, dtype=np.float64)
        contents = np.asarray(self.contents, dtype=np.float64)
        where = f" ({self.source})" if self.source else ""
        if edges.ndim != 1 or contents.ndim != 1 or len(edges) != len(contents) + 1:
            raise ConfigError(
                f"histogram{where} needs n+1 edges for n contents, "
                f"got {edges.size} edges and {contents.size} contents"
            )
        if len(contents) == 0:
            raise ConfigError(f"histogram{where} has no bins")
        if not np.all(np.isfinite(edges)) or not np.all(np.diff(edges) > 0):
            raise ConfigError(f"histogram{where} edges must be finite and increasing")
        if not np.all(np.isfinite(contents)) or np.any(contents < 0) or contents.sum() <= 0:
            raise ConfigError(f"histogram{where} contents must be finite, >= 0, not all zero")
        cdf = np.concatenate([[0.0], np.cumsum(contents)])
        cdf /= cdf[-1]
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "contents", contents)
        object.__setattr__(self, "_cdf", cdf)

    def ppf(self, u: npt.ArrayLike) -> npt.NDArray[np.float64]:
        u = np.asarray(u, dtype=np.float64)
        cdf = self._cdf
        # side="right" never lands in an empty bin: there cdf[i] == cdf[i + 1]
        i = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, len(self.contents) - 1)
        width = cdf[i + 1] - cdf[i]
        frac = np.divide(u - cdf[i], width, out=np.zeros_like(u), where=width > 0)
        return self.edges[i] + np.clip(frac, 0.0, 1.0) * (self.edges[i + 1] - self.edges[i])

    @property
    def support(self) -> tuple[float, float]:
        filled = np.flatnonzero(self.contents > 0)
        return (float(self.edges[filled[0]]), float(self.edges[filled[-1] + 1]))

    def expectation(self) -> float:
        centres = 0.5 * (self.edges[1:] + self.edges[:-1])
        return float(np.sum(centres * self.contents) / np.sum(self.contents))

    def describe(self) -> str:
        return self.source or "hist:<in memory>"


def read_histogram(spec: str) -> Histogram:
    """Histogram from ``PATH.csv`` (text format in the module docstring) or ``FILE.root:NAME``."""
    if ".root:" in spec:
        path, name = spec.split(".root:", 1)
        return _read_root(Path(path + ".root"), name, spec)
    if spec.endswith(".root"):
        raise ConfigError(f"hist:{spec}: name the histogram as hist:FILE.root:HISTNAME")
    return _read_text(Path(spec), spec)


def _read_text(path: Path, spec: str) -> Histogram:
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"hist:{spec}: cannot read {path}: {err.strerror}") from err
    edges: list[float] = []
    contents: list[float] = []
    final: float | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if final is not None:
            raise ConfigError(
                f"{path}:{lineno}: only the last line may hold a single number (the upper edge)"
            )
        parts = line.replace(",", " ").split()
        try:
            values = [float(v) for v in parts]
        except ValueError as err:
            raise ConfigError(f"{path}:{lineno}: not numbers: {line!r}") from err
        if len(values) == 2:
            edges.append(values[0])
            contents.append(values[1])
        elif len(values) == 1:
            final = values[0]
        else:
            raise ConfigError(
                f"{path}:{lineno}: expected 'low_edge,content' or a final upper edge, got {line!r}"
            )
    if final is None:
        raise ConfigError(f"{path}: the last line must hold the upper edge of the last bin")
    return Histogram(np.array([*edges, final]), np.array(contents), source=f"hist:{spec}")


def _read_root(path: Path, name: str, spec: str) -> Histogram:
    import uproot

    try:
        with uproot.open(path) as f:
            contents, edges = f[name].to_numpy(flow=False)
    except FileNotFoundError as err:
        raise ConfigError(f"hist:{spec}: no file {path}") from err
    except KeyError as err:
        raise ConfigError(f"hist:{spec}: no histogram {name!r} in {path}") from err
    except (AttributeError, ValueError) as err:
        raise ConfigError(f"hist:{spec}: {name!r} in {path} is not a 1-D histogram") from err
    return Histogram(np.asarray(edges), np.asarray(contents), source=f"hist:{spec}")


def _numbers(text: str, parts: list[str], option: str) -> list[float]:
    try:
        return [float(p) for p in parts]
    except ValueError as err:
        raise ConfigError(_bad(text, option, "not a number")) from err


def _bad(text: str, option: str, why: str) -> str:
    return f"{option}: cannot use {text!r} ({why}); allowed forms: {', '.join(DISTRIBUTION_FORMS)}"


def parse_distribution(text: str, option: str = "distribution") -> Distribution:
    """Distribution from an option string (forms in the module docstring).

    ``option`` names the command-line option in error messages (e.g. ``"--pt"``).
    """
    kind, _, rest = text.strip().partition(":")
    kind = kind.lower()
    try:
        if kind == "hist" and rest:
            return read_histogram(rest)
        parts = rest.split(":") if rest else []
        if kind == "flat" and len(parts) == 2:
            return Flat(*_numbers(text, parts, option))
        if kind == "exp" and len(parts) in (1, 3):
            return Exponential(*_numbers(text, parts, option))
        if kind == "fixed" and len(parts) == 1:
            return Fixed(*_numbers(text, parts, option))
    except ConfigError as err:
        if str(err).startswith(option):
            raise
        raise ConfigError(f"{option}: {err}") from err
    raise ConfigError(_bad(text, option, "unknown form"))
