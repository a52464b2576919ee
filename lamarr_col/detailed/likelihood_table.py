"""Two-class log-density tables in momentum bins: the likelihoods of a PID variable.

A :class:`LogDensityTable` holds, for a signal class and a background class, the log of the
normalised density of one variable ``x`` (the muon D², the ECAL E/p, …) in bins of ``x``, in
each bin of momentum. :meth:`~LogDensityTable.fit` histograms samples of the two classes,
:meth:`~LogDensityTable.evaluate` looks up the two log-likelihoods of tracks, and the tables of
each condition set are stored in one JSON file of the package (:meth:`~LogDensityTable.save`,
:meth:`~LogDensityTable.load`).

Binning: a track is looked up in the momentum bin of its ``p`` (below the first edge: the first
bin, above the last: the last) and the ``x`` bin of its value, the last ``x`` bin taking the
overflow (and NaN). Fitting histograms the momenta inside the edges only, with ``x`` clipped
into the last bin; every bin gets half a count before normalising, and the log densities are
floored at ``FLOOR``, so that an empty bin gives a large but finite log-likelihood.

Subclasses name their JSON keys (``KEYS``) and give their edges as defaults, so that the files
read the same as before the machinery was shared (:mod:`.muon_likelihood`,
:mod:`.ecal_likelihood`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

__all__ = ["FLOOR", "LogDensityTable", "log_density", "package_file"]

#: log-density floor (empty bins, or densities of the analytic fallbacks far in their tails)
FLOOR = -20.0
_PACKAGE = "lamarr_col.detailed"


def log_density(counts: npt.NDArray[np.float64], widths: npt.NDArray[np.float64]) -> npt.NDArray:
    """log of the normalised density per bin (last axis), with half a count added to every bin,
    floored at ``FLOOR``."""
    smoothed = counts + 0.5
    dens = smoothed / smoothed.sum(axis=-1, keepdims=True) / widths
    return np.maximum(np.log(dens), FLOOR)


def package_file(name: str) -> Path:
    """The path of the package data file ``name`` of :mod:`lamarr_col.detailed`."""
    return Path(str(resources.files(_PACKAGE).joinpath(name)))


def _stored(name: str, path: Path | None) -> dict[str, Any]:
    if path is not None:
        return json.loads(path.read_text()) if path.exists() else {}
    ref = resources.files(_PACKAGE).joinpath(name)
    return json.loads(ref.read_text()) if ref.is_file() else {}


def _edge(v: float) -> float | str:
    return float(v) if np.isfinite(v) else "inf"


@dataclass(frozen=True)
class LogDensityTable:
    """log densities, shape (momentum bins, x bins), of ``x`` for the signal and the background
    class; ``sample`` says where they come from; edges in MeV for the momentum."""

    log_signal: npt.NDArray[np.float64]
    log_background: npt.NDArray[np.float64]
    sample: str
    p_edges: tuple[float, ...]
    x_edges: tuple[float, ...]

    #: JSON keys of the x edges, the signal and the background log densities
    KEYS: ClassVar[tuple[str, str, str]] = ("x_edges", "log_signal", "log_background")

    def __post_init__(self) -> None:
        shape = (len(self.p_edges) - 1, len(self.x_edges) - 1)
        for name in ("log_signal", "log_background"):
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"{name}: shape {np.shape(getattr(self, name))}, edges {shape}")

    def bins(
        self, p: npt.ArrayLike, x: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """(momentum bin, x bin) of each track (module docstring)."""
        n_p, n_x = len(self.p_edges) - 1, len(self.x_edges) - 1
        ip = np.clip(np.searchsorted(self.p_edges, p, side="right") - 1, 0, n_p - 1)
        xv = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=self.x_edges[-1])
        ix = np.clip(np.searchsorted(self.x_edges, xv, side="right") - 1, 0, n_x - 1)
        return ip, ix

    def evaluate(
        self, p: npt.ArrayLike, x: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(signal LL, background LL) of tracks with momentum ``p`` (MeV) and variable ``x``."""
        ip, ix = self.bins(p, x)
        return self.log_signal[ip, ix], self.log_background[ip, ix]

    def dll(self, p: npt.ArrayLike, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """signal LL − background LL."""
        sig, bkg = self.evaluate(p, x)
        return sig - bkg

    def as_dict(self) -> dict[str, Any]:
        k_x, k_sig, k_bkg = self.KEYS
        return {
            "sample": self.sample,
            "p_edges": [_edge(v) for v in self.p_edges],
            k_x: [_edge(v) for v in self.x_edges],
            k_sig: np.round(self.log_signal, 4).tolist(),
            k_bkg: np.round(self.log_background, 4).tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        k_x, k_sig, k_bkg = cls.KEYS
        return cls(
            log_signal=np.asarray(data[k_sig], dtype=np.float64),
            log_background=np.asarray(data[k_bkg], dtype=np.float64),
            sample=str(data["sample"]),
            p_edges=tuple(float(v) for v in data["p_edges"]),
            x_edges=tuple(float(v) for v in data[k_x]),
        )

    @classmethod
    def fit(
        cls,
        p: npt.ArrayLike,
        x: npt.ArrayLike,
        is_signal: npt.ArrayLike,
        sample: str,
        p_edges: tuple[float, ...],
        x_edges: tuple[float, ...],
    ) -> Self:
        """Histogram ``x`` by momentum for the signal (``is_signal``) and the other tracks."""
        pe, xe = np.asarray(p_edges), np.asarray(x_edges)
        pv = np.asarray(p, dtype=np.float64)
        xv = np.minimum(np.nan_to_num(np.asarray(x, dtype=np.float64), nan=xe[-1]), xe[-1] - 1e-9)
        sig = np.asarray(is_signal, dtype=bool)
        widths = np.diff(xe)
        logs = []
        for sel in (sig, ~sig):
            counts, _, _ = np.histogram2d(pv[sel], xv[sel], bins=[pe, xe])
            logs.append(log_density(counts, widths))
        return cls(
            log_signal=logs[0],
            log_background=logs[1],
            sample=sample,
            p_edges=tuple(p_edges),
            x_edges=tuple(x_edges),
        )

    @classmethod
    def load(cls, file_name: str, conditions_name: str, path: Path | None = None) -> Self | None:
        """The table of ``conditions_name`` stored in the package's ``file_name`` (in ``path``
        instead when given), None when there is none."""
        data = _stored(file_name, path).get(conditions_name)
        return cls.from_dict(data) if data else None

    def save(self, conditions_name: str, path: Path) -> None:
        """Store the table for ``conditions_name`` in the JSON file ``path`` (other entries
        kept)."""
        data = _stored(path.name, path)
        data[conditions_name] = self.as_dict()
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
