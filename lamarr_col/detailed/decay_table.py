"""Decay channels of the long-lived particles that decay in flight inside the detector.

Branching fractions are the PDG 2024 fitted values (S. Navas et al. (Particle Data Group),
Phys. Rev. D 110, 030001 (2024), particle listings), in percent. Only the main channels are
kept; within each species they are renormalised to sum to one, which spreads the small rest
(radiative and rare modes, at most 0.35 % for K0L) over the listed channels.

Every channel is generated with n-body phase space (:mod:`lamarr_col.sources.phasespace`):
matrix elements (V−A structure of the semileptonic modes, the Dalitz-plot slopes of K → 3π,
the muon's Michel spectrum, polarisation and hyperon decay asymmetries) are ignored, so the
daughters' momentum spectra are approximate while the kinematics (masses, four-momentum
conservation) are exact.

Channels are written for the particles listed in :data:`_PRIMARY`; the antiparticles get the
charge-conjugate channels (each daughter replaced by its antiparticle, self-conjugate ones such
as π0, K0S, K0L and γ kept), see :func:`decay_table`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from lamarr_col.event.pdg import pdg_table

__all__ = ["DecayChannels", "charge_conjugate", "decay_table"]

# PDG ids used below
_E, _NU_E, _MU, _NU_MU = 11, 12, 13, 14
_PI0, _PI, _K, _KS, _KL = 111, 211, 321, 310, 130
_P, _N = 2212, 2112
_LAMBDA, _SIGMA_P, _SIGMA_M, _XI_M, _XI_0, _OMEGA = 3122, 3222, 3112, 3312, 3322, 3334

#: (branching fraction in %, daughter ids) per mother id, PDG 2024.
_PRIMARY: Mapping[int, tuple[tuple[float, tuple[int, ...]], ...]] = MappingProxyType(
    {
        # π+ (τ = 26.033 ns)
        _PI: (
            (99.98770, (-_MU, _NU_MU)),
            (1.230e-2, (-_E, _NU_E)),
        ),
        # K+ (τ = 12.38 ns)
        _K: (
            (63.56, (-_MU, _NU_MU)),
            (20.67, (_PI, _PI0)),
            (5.583, (_PI, _PI, -_PI)),
            (5.07, (_PI0, -_E, _NU_E)),  # K+e3
            (3.352, (_PI0, -_MU, _NU_MU)),  # K+μ3
            (1.760, (_PI, _PI0, _PI0)),
        ),
        # K0S (τ = 89.54 ps)
        _KS: (
            (69.20, (_PI, -_PI)),
            (30.69, (_PI0, _PI0)),
        ),
        # K0L (τ = 51.16 ns); the semileptonic modes are split evenly between the charges
        _KL: (
            (40.55 / 2, (-_PI, -_E, _NU_E)),
            (40.55 / 2, (_PI, _E, -_NU_E)),
            (27.04 / 2, (-_PI, -_MU, _NU_MU)),
            (27.04 / 2, (_PI, _MU, -_NU_MU)),
            (19.52, (_PI0, _PI0, _PI0)),
            (12.54, (_PI, -_PI, _PI0)),
        ),
        # Λ (τ = 263.2 ps)
        _LAMBDA: (
            (64.1, (_P, -_PI)),
            (35.9, (_N, _PI0)),
        ),
        # Σ+ (τ = 80.18 ps)
        _SIGMA_P: (
            (51.57, (_P, _PI0)),
            (48.31, (_N, _PI)),
        ),
        # Σ− (τ = 147.9 ps)
        _SIGMA_M: ((99.848, (_N, -_PI)),),
        # Ξ− (τ = 163.9 ps)
        _XI_M: ((99.887, (_LAMBDA, -_PI)),),
        # Ξ0 (τ = 290 ps)
        _XI_0: ((99.524, (_LAMBDA, _PI0)),),
        # Ω− (τ = 82.1 ps)
        _OMEGA: (
            (67.8, (_LAMBDA, -_K)),
            (23.6, (_XI_0, -_PI)),
            (8.6, (_XI_M, _PI0)),
        ),
        # μ− (τ = 2.197 µs)
        _MU: ((100.0, (_E, -_NU_E, _NU_MU)),),
    }
)


def charge_conjugate(pid: int) -> int:
    """The antiparticle's id: −pid when the PDG table knows it, else pid (self-conjugate)."""
    return -pid if bool(pdg_table().known([-pid])[0]) else pid


@dataclass(frozen=True)
class DecayChannels:
    """The channels of one species: cumulative fractions and daughters.

    ``cumulative[k]`` is the sum of the normalised fractions of channels 0..k (the last is
    exactly 1); ``daughters[k]`` and ``masses[k]`` hold the ids and PDG masses (MeV).
    """

    pid: int
    fractions: npt.NDArray[np.float64]
    cumulative: npt.NDArray[np.float64]
    daughters: tuple[npt.NDArray[np.int64], ...]
    masses: tuple[npt.NDArray[np.float64], ...]

    def choose(self, u: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        """Channel index for uniforms ``u`` in (0, 1)."""
        idx = np.searchsorted(self.cumulative, u, side="right")
        return np.minimum(idx, len(self.cumulative) - 1)


def _channels(pid: int, modes: tuple[tuple[float, tuple[int, ...]], ...]) -> DecayChannels:
    table = pdg_table()
    frac = np.array([m[0] for m in modes], dtype=np.float64)
    frac = frac / frac.sum()
    cum = np.cumsum(frac)
    cum[-1] = 1.0
    daughters = tuple(np.array(m[1], dtype=np.int64) for m in modes)
    masses = tuple(table.mass_of(d).astype(np.float64) for d in daughters)
    mother_mass = float(table.mass_of([pid])[0])
    for d, m in zip(daughters, masses, strict=True):
        if not np.all(np.isfinite(m)) or m.sum() >= mother_mass:
            msg = f"decay table: {pid} -> {d.tolist()} is not allowed by the PDG masses"
            raise ValueError(msg)
    return DecayChannels(pid, frac, cum, daughters, masses)


@functools.cache
def decay_table() -> Mapping[int, DecayChannels]:
    """Channels by mother PDG id, particles and antiparticles (built once per process)."""
    out: dict[int, DecayChannels] = {}
    for pid, modes in _PRIMARY.items():
        out[pid] = _channels(pid, modes)
        anti = charge_conjugate(pid)
        if anti != pid:
            conj = tuple(
                (bf, tuple(charge_conjugate(d) for d in daughters)) for bf, daughters in modes
            )
            out[anti] = _channels(anti, conj)
    return MappingProxyType(out)
