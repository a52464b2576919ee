"""Muon and non-muon log-likelihoods of isMuon tracks from their distance D².

D² (:mod:`.muon_id`) is the mean squared distance, in units of the expected extrapolation
error, between a track's extrapolation and its closest hits in M2–M5. True muons give a
narrow, χ²-like distribution; hadrons that pass isMuon (decays in flight, punch-through, hits
of other particles or background) a broad one. The log-likelihoods are the logs of the two
normalised D² densities in bins of momentum, measured on this simulation's own true muons and
non-muons (π, K, p) that pass isMuon: :func:`fit_table`, run by

    python -m lamarr_col.detailed.muon_calibration --conditions NAME --events N

which stores the tables per condition set in ``muon_ll.json`` (package data). A condition set
without a stored table uses the analytic shapes of :func:`analytic_table` (muons: a mean of
three χ²₂ variables, Gamma(3, 2/3); non-muons: an exponential of mean 6).

Tracks that are not isMuon get ``muon_mu_ll = muon_bg_ll = 0``: no muon information (the
muon DLL, muLL − bgLL, is then 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "D2_EDGES",
    "P_EDGES",
    "MuonLikelihoodTable",
    "analytic_table",
    "fit_table",
    "load_table",
    "save_table",
]

#: momentum bins (MeV) and D² bins of the tables; the last D² bin takes the overflow
P_EDGES = (3000.0, 6000.0, 10000.0, 20000.0, 50000.0, np.inf)
D2_EDGES = tuple(float(v) for v in np.linspace(0.0, 20.0, 41))
_FILE = "muon_ll.json"
_FLOOR = -20.0  # log-density floor (empty bins)


@dataclass(frozen=True)
class MuonLikelihoodTable:
    """log densities (p bins, D² bins) of D² for muons and non-muons; ``sample`` says where
    they come from."""

    log_muon: npt.NDArray[np.float64]
    log_non_muon: npt.NDArray[np.float64]
    sample: str
    p_edges: tuple[float, ...] = P_EDGES
    d2_edges: tuple[float, ...] = D2_EDGES

    def evaluate(
        self, p: npt.NDArray[np.float64], d2: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(muon LL, non-muon LL) of tracks with momentum ``p`` (MeV) and distance ``d2``."""
        n_p, n_d = self.log_muon.shape
        ip = np.clip(np.searchsorted(self.p_edges, p, side="right") - 1, 0, n_p - 1)
        d = np.nan_to_num(d2, nan=self.d2_edges[-1])
        idd = np.clip(np.searchsorted(self.d2_edges, d, side="right") - 1, 0, n_d - 1)
        return self.log_muon[ip, idd], self.log_non_muon[ip, idd]

    def as_dict(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "p_edges": [float(v) if np.isfinite(v) else "inf" for v in self.p_edges],
            "d2_edges": list(self.d2_edges),
            "log_muon": np.round(self.log_muon, 4).tolist(),
            "log_non_muon": np.round(self.log_non_muon, 4).tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MuonLikelihoodTable:
        return cls(
            log_muon=np.asarray(data["log_muon"], dtype=np.float64),
            log_non_muon=np.asarray(data["log_non_muon"], dtype=np.float64),
            sample=str(data["sample"]),
            p_edges=tuple(float(v) for v in data["p_edges"]),
            d2_edges=tuple(float(v) for v in data["d2_edges"]),
        )


def _log_density(counts: npt.NDArray[np.float64], widths: npt.NDArray[np.float64]) -> npt.NDArray:
    """log of the normalised density per bin, with half a count added to every bin."""
    smoothed = counts + 0.5
    dens = smoothed / smoothed.sum(axis=-1, keepdims=True) / widths
    return np.maximum(np.log(dens), _FLOOR)


def fit_table(
    p: npt.NDArray[np.float64],
    d2: npt.NDArray[np.float64],
    is_true_muon: npt.NDArray[np.bool_],
    sample: str,
) -> MuonLikelihoodTable:
    """Histogram D² of isMuon tracks by momentum for true muons and for the others."""
    p_edges, d_edges = np.asarray(P_EDGES), np.asarray(D2_EDGES)
    d = np.minimum(np.nan_to_num(d2, nan=d_edges[-1]), d_edges[-1] - 1e-9)
    widths = np.diff(d_edges)
    logs = []
    for sel in (is_true_muon, ~is_true_muon):
        counts, _, _ = np.histogram2d(p[sel], d[sel], bins=[p_edges, d_edges])
        logs.append(_log_density(counts, widths))
    return MuonLikelihoodTable(logs[0], logs[1], sample)


def analytic_table() -> MuonLikelihoodTable:
    """The fallback shapes of the module docstring, the same in every momentum bin."""
    edges = np.asarray(D2_EDGES)
    centre = 0.5 * (edges[1:] + edges[:-1])
    mu = stats.gamma.logpdf(centre, a=3.0, scale=2.0 / 3.0)
    bg = stats.expon.logpdf(centre, scale=6.0)
    n_p = len(P_EDGES) - 1
    return MuonLikelihoodTable(
        np.tile(np.maximum(mu, _FLOOR), (n_p, 1)),
        np.tile(np.maximum(bg, _FLOOR), (n_p, 1)),
        "analytic (no table measured for this condition set)",
    )


def _stored(path: Path | None = None) -> dict[str, Any]:
    if path is not None:
        return json.loads(path.read_text()) if path.exists() else {}
    ref = resources.files("lamarr_col.detailed").joinpath(_FILE)
    return json.loads(ref.read_text()) if ref.is_file() else {}


def load_table(conditions_name: str, path: Path | None = None) -> MuonLikelihoodTable:
    """The stored table of a condition set (the package's ``muon_ll.json`` unless ``path``),
    else :func:`analytic_table`."""
    data = _stored(path).get(conditions_name)
    return MuonLikelihoodTable.from_dict(data) if data else analytic_table()


def save_table(conditions_name: str, table: MuonLikelihoodTable, path: Path) -> None:
    """Store ``table`` for ``conditions_name`` in the JSON file ``path`` (other entries kept)."""
    data = _stored(path)
    data[conditions_name] = table.as_dict()
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
