"""Electron and non-electron log-likelihoods of tracks from the ECAL's E/p.

A track with a T segment is matched to the ECAL cluster of smallest match χ² in its event
(:mod:`.ecal_match`), and E/p is that cluster's energy over the track's momentum. An electron
leaves all its energy in the ECAL (25 X0): E/p peaks at 1 with the width of the calorimeter's
energy resolution. A hadron (1.1 λI) leaves a minimum-ionising deposit or the start of a
hadronic shower: E/p falls from ≈ 0.1 with a long tail. The electron DLL is

    DLL_e(ECAL) = log f_e(E/p | p bin) − log f_non-e(E/p | p bin)

with the two normalised E/p densities in bins of momentum (``P_EDGES``, MeV) and of E/p
(``EOP_EDGES``: 0–2.5 in steps of 0.05, then one overflow bin), measured on this simulation's
own true electrons and non-electrons (π, K, p) of long tracks: :func:`fit_table`, run by

    python -m lamarr_col.detailed.ecal_calibration --conditions NAME --events N --store

which stores the tables per condition set in ``ecal_ll.json`` (package data; the exact commands
of the stored tables are in :mod:`.ecal_calibration`).

Match quality. The matching gives every track the nearest cluster of its event however far it
is, and most hadrons end up with some other particle's cluster (median χ² ≈ 500, against ≈ 2
for electrons above 5 GeV, on lhcb-run3): such an E/p says nothing. Only tracks with a match χ² of at most
``CHI2_MAX`` get a DLL, and the tables are measured on those tracks only; the others, and
those without a cluster (E/p NaN), get ``DLL = 0`` (no ECAL information). The cut is applied
when the caller passes ``chi2``.

A condition set without a stored table uses the analytic shapes of :func:`analytic_table`:

- electrons: 90 % a Gaussian at E/p = 1 of width σ(p) = a/√(p/GeV) ⊕ b ⊕ ``SIGMA_EXTRA``, the
  ECAL's resolution (stochastic a and constant b of the condition set, LHCb's 9 % and 0.8 % for
  a set that cannot be loaded) at the momentum bin's typical momentum, with a term for the
  momentum resolution, containment and clustering corrections; 10 % ``TAIL`` (below);
- non-electrons: 90 % an exponential of mean ``HADRON_MEAN`` (0.3); 10 % ``TAIL``;
- ``TAIL``, common to both: an exponential of mean 1 (wrong matches, overlapping showers), so
  that the DLL tends to 0 far from both peaks.

Densities are integrated over each bin (the last bin up to infinity) and divided by its width.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from scipy import stats

from lamarr_col.detailed.likelihood_table import FLOOR, LogDensityTable

__all__ = [
    "CHI2_MAX",
    "EOP_EDGES",
    "HADRON_MEAN",
    "P_EDGES",
    "SIGMA_EXTRA",
    "EcalLikelihoodTable",
    "analytic_table",
    "electron_dll",
    "fit_table",
    "load_table",
    "save_table",
]

#: momentum bins (MeV): the first takes everything below 3 GeV, the last everything above 40
P_EDGES = (0.0, 3000.0, 6000.0, 10000.0, 20000.0, 40000.0, np.inf)
#: E/p bins: 0–2.5 in steps of 0.05, then the overflow bin 2.5–4 (it takes everything above)
EOP_EDGES = (*(round(0.05 * i, 2) for i in range(51)), 4.0)
#: Largest track–cluster match χ² (2 degrees of freedom) for which E/p is used [chosen on the
#: calibration sample of lhcb-run3: keeps ≈ 80 % of the matched electrons above 5 GeV and 14 %
#: of the matched hadrons; of the cuts 9–100 it gives the most electrons at 2 % pion misID]
CHI2_MAX = 25.0
#: Extra E/p width of electrons in the analytic fallback [PLAUS: momentum resolution,
#: containment and cluster corrections; the measured cores are 3–5 % wide]
SIGMA_EXTRA = 0.03
#: Mean E/p of non-electrons in the analytic fallback [PLAUS]
HADRON_MEAN = 0.3
_TAIL_FRACTION = 0.1
_TAIL_MEAN = 1.0
#: LHCb's ECAL resolution (stochastic, constant) for sets whose conditions cannot be loaded
_LHCB_RESOLUTION = (0.09, 0.008)
_FILE = "ecal_ll.json"


@dataclass(frozen=True)
class EcalLikelihoodTable(LogDensityTable):
    """log densities (p bins, E/p bins) of E/p for electrons (the signal) and non-electrons;
    ``sample`` says where they come from."""

    p_edges: tuple[float, ...] = P_EDGES
    x_edges: tuple[float, ...] = EOP_EDGES

    KEYS: ClassVar[tuple[str, str, str]] = ("eop_edges", "log_electron", "log_non_electron")


def fit_table(
    p: npt.ArrayLike,
    e_over_p: npt.ArrayLike,
    is_electron: npt.ArrayLike,
    sample: str,
) -> EcalLikelihoodTable:
    """Histogram E/p of matched tracks (χ² ≤ ``CHI2_MAX``: the caller selects them) by momentum
    for true electrons and for the others."""
    return EcalLikelihoodTable.fit(p, e_over_p, is_electron, sample, P_EDGES, EOP_EDGES)


def _typical_momentum_gev() -> npt.NDArray[np.float64]:
    """Geometric mean of each momentum bin's edges, limited to 2–100 GeV."""
    edges = np.clip(np.asarray(P_EDGES), 2000.0, 100000.0)
    return np.sqrt(edges[:-1] * edges[1:]) / 1000.0


def analytic_table(
    stochastic: float = _LHCB_RESOLUTION[0], constant: float = _LHCB_RESOLUTION[1]
) -> EcalLikelihoodTable:
    """The fallback shapes of the module docstring for an ECAL of resolution
    σE/E = ``stochastic``/√(E/GeV) ⊕ ``constant``."""
    lo = np.asarray(EOP_EDGES[:-1])
    hi = np.asarray((*EOP_EDGES[1:-1], np.inf))
    widths = np.diff(EOP_EDGES)
    tail = stats.expon.cdf(hi, scale=_TAIL_MEAN) - stats.expon.cdf(lo, scale=_TAIL_MEAN)
    hadron = stats.expon.cdf(hi, scale=HADRON_MEAN) - stats.expon.cdf(lo, scale=HADRON_MEAN)
    f = _TAIL_FRACTION
    log_bg = np.log(((1.0 - f) * hadron + f * tail) / widths)
    log_e, log_h = [], []
    for p_gev in _typical_momentum_gev():
        sigma = np.sqrt(stochastic**2 / p_gev + constant**2 + SIGMA_EXTRA**2)
        core = stats.norm.cdf(hi, 1.0, sigma) - stats.norm.cdf(lo, 1.0, sigma)
        log_e.append(np.log(((1.0 - f) * core + f * tail) / widths))
        log_h.append(log_bg)
    return EcalLikelihoodTable(
        np.maximum(np.asarray(log_e), FLOOR),
        np.maximum(np.asarray(log_h), FLOOR),
        f"analytic (no table measured for this condition set; ECAL {stochastic:.3g}/√E ⊕ "
        f"{constant:.3g})",
    )


def _analytic_for(conditions_name: str) -> EcalLikelihoodTable:
    """:func:`analytic_table` with the ECAL resolution of the condition set, LHCb's when it
    cannot be loaded."""
    from lamarr_col.detector import load_conditions
    from lamarr_col.errors import ConfigError

    try:
        ecal = load_conditions(conditions_name).ecal
    except (ConfigError, OSError):
        return analytic_table()
    return analytic_table(ecal.stochastic, ecal.constant)


def load_table(conditions_name: str, path: Path | None = None) -> EcalLikelihoodTable:
    """The stored table of a condition set (the package's ``ecal_ll.json`` unless ``path``),
    else the analytic table for its ECAL."""
    table = EcalLikelihoodTable.load(_FILE, conditions_name, path)
    return table if table is not None else _analytic_for(conditions_name)


@cache
def _cached_table(conditions_name: str) -> EcalLikelihoodTable:
    return load_table(conditions_name)


def save_table(conditions_name: str, table: EcalLikelihoodTable, path: Path) -> None:
    """Store ``table`` for ``conditions_name`` in the JSON file ``path`` (other entries kept)."""
    table.save(conditions_name, path)


def electron_dll(
    conditions_name: str,
    p: npt.ArrayLike,
    e_over_p: npt.ArrayLike,
    chi2: npt.ArrayLike | None = None,
    *,
    table: EcalLikelihoodTable | None = None,
) -> npt.NDArray[np.float64]:
    """ECAL electron DLL of tracks of momentum ``p`` (MeV) and ``e_over_p``: 0 where E/p is NaN
    (no cluster) or, when ``chi2`` (the match χ²) is given, where it exceeds ``CHI2_MAX`` or is
    NaN. ``table`` defaults to the condition set's (:func:`load_table`, loaded once)."""
    eop = np.asarray(e_over_p, dtype=np.float64)
    if table is None:
        table = _cached_table(conditions_name)
    usable = np.isfinite(eop)
    if chi2 is not None:
        usable &= np.asarray(chi2, dtype=np.float64) <= CHI2_MAX
    if not usable.any():
        return np.zeros(eop.shape)
    return np.where(usable, table.dll(np.asarray(p, dtype=np.float64), eop), 0.0)
