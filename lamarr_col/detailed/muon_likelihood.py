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
three χ²₂ variables, Gamma(3, 2/3); non-muons: an exponential of mean 6). The table machinery
is the generic :class:`.likelihood_table.LogDensityTable`.

Tracks that are not isMuon get ``muon_mu_ll = muon_bg_ll = 0``: no muon information (the
muon DLL, muLL − bgLL, is then 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from scipy import stats

from lamarr_col.detailed.likelihood_table import FLOOR, LogDensityTable

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


@dataclass(frozen=True)
class MuonLikelihoodTable(LogDensityTable):
    """log densities (p bins, D² bins) of D² for muons (the signal) and non-muons; ``sample``
    says where they come from."""

    p_edges: tuple[float, ...] = P_EDGES
    x_edges: tuple[float, ...] = D2_EDGES

    KEYS: ClassVar[tuple[str, str, str]] = ("d2_edges", "log_muon", "log_non_muon")

    @property
    def log_muon(self) -> npt.NDArray[np.float64]:
        return self.log_signal

    @property
    def log_non_muon(self) -> npt.NDArray[np.float64]:
        return self.log_background

    @property
    def d2_edges(self) -> tuple[float, ...]:
        return self.x_edges


def fit_table(
    p: npt.NDArray[np.float64],
    d2: npt.NDArray[np.float64],
    is_true_muon: npt.NDArray[np.bool_],
    sample: str,
) -> MuonLikelihoodTable:
    """Histogram D² of isMuon tracks by momentum for true muons and for the others."""
    return MuonLikelihoodTable.fit(p, d2, is_true_muon, sample, P_EDGES, D2_EDGES)


def analytic_table() -> MuonLikelihoodTable:
    """The fallback shapes of the module docstring, the same in every momentum bin."""
    edges = np.asarray(D2_EDGES)
    centre = 0.5 * (edges[1:] + edges[:-1])
    mu = stats.gamma.logpdf(centre, a=3.0, scale=2.0 / 3.0)
    bg = stats.expon.logpdf(centre, scale=6.0)
    n_p = len(P_EDGES) - 1
    return MuonLikelihoodTable(
        np.tile(np.maximum(mu, FLOOR), (n_p, 1)),
        np.tile(np.maximum(bg, FLOOR), (n_p, 1)),
        "analytic (no table measured for this condition set)",
    )


def load_table(conditions_name: str, path: Path | None = None) -> MuonLikelihoodTable:
    """The stored table of a condition set (the package's ``muon_ll.json`` unless ``path``),
    else :func:`analytic_table`."""
    table = MuonLikelihoodTable.load(_FILE, conditions_name, path)
    return table if table is not None else analytic_table()


def save_table(conditions_name: str, table: MuonLikelihoodTable, path: Path) -> None:
    """Store ``table`` for ``conditions_name`` in the JSON file ``path`` (other entries kept)."""
    table.save(conditions_name, path)
