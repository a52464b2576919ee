"""Materials of the detailed simulation, as rows for :mod:`lamarr_col.kernels.material`.

Elements and polystyrene: PDG "Atomic and Nuclear Properties of Materials"
(https://pdg.lbl.gov/2024/AtomicNuclearProperties/): Z/A, density, mean excitation energy I,
radiation length X0 and the Sternheimer density-effect parameters (C̄, X0, X1, a, k, δ0).
The RICH gases C4F10 and CF4 are not in those tables; they are derived here from PDG's carbon
and fluorine values: Z/A from the formula, I by Bragg additivity (ln I weighted by electrons,
I_C = 78 eV, I_F = 95 eV), 1/X0 = Σ wᵢ/X0ᵢ (X0_C = 42.70, X0_F = 32.93 g/cm²), ideal-gas density
at 20 °C and 1 atm, and the density effect from the Sternheimer–Peierls rules for gases
(Phys. Rev. B 3 (1971) 3681). ``polystyrene`` stands for the scintillator.

:func:`landau_table` is the quantile table that :func:`lamarr_col.kernels.material.energy_loss`
samples: the Landau variable λ − λ_mode in units of ξ (scipy's ``landau`` is the stable law of
scale 2/π in those units, hence the factor π/2), at u = (k + ½)/m.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from lamarr_col.kernels.material import MATERIAL_FIELDS

__all__ = ["MATERIALS", "Material", "get_material", "landau_table"]

_MOLAR_VOLUME_20C_CM3 = 24_055.0  # molar volume of an ideal gas at 20 °C, 1 atm (cm³)


@dataclass(frozen=True)
class Material:
    """One material. Units: g/cm³, eV, g/cm²; Sternheimer parameters dimensionless."""

    name: str
    z_over_a: float
    density: float
    mean_excitation_ev: float
    radiation_length: float
    c_bar: float
    x0: float
    x1: float
    a: float
    k: float
    delta0: float

    @property
    def radiation_length_mm(self) -> float:
        """X0 in mm."""
        return 10.0 * self.radiation_length / self.density

    def areal_density(self, thickness_mm: float) -> float:
        """g/cm² of a layer ``thickness_mm`` thick."""
        return 0.1 * thickness_mm * self.density

    def as_array(self) -> npt.NDArray[np.float64]:
        """The kernel row, in the order of ``MATERIAL_FIELDS`` (I in MeV)."""
        values = {f: float(getattr(self, f)) for f in MATERIAL_FIELDS if f != "mean_excitation"}
        values["mean_excitation"] = 1e-6 * self.mean_excitation_ev
        return np.array([values[f] for f in MATERIAL_FIELDS], dtype=np.float64)


def _gas(name: str, atoms: Mapping[str, int], i_elements: Mapping[str, float]) -> Material:
    """A molecular gas at 20 °C, 1 atm from its formula (see the module docstring)."""
    z = {"C": 6, "F": 9}
    a = {"C": 12.011, "F": 18.998403}
    x0 = {"C": 42.70, "F": 32.93}
    molar = sum(n * a[e] for e, n in atoms.items())
    electrons = sum(n * z[e] for e, n in atoms.items())
    ln_i = sum(n * z[e] * math.log(i_elements[e]) for e, n in atoms.items()) / electrons
    inv_x0 = sum(n * a[e] / molar / x0[e] for e, n in atoms.items())
    density = molar / _MOLAR_VOLUME_20C_CM3
    i_ev = math.exp(ln_i)
    plasma_ev = 28.816 * math.sqrt(density * electrons / molar)  # ħωp, PDG eq. 34.6
    c_bar = 2.0 * math.log(i_ev / plasma_ev) + 1.0
    # Sternheimer–Peierls: (upper C̄, X0, X1) bands for gases, then the open-ended rule
    bands = ((10.0, 1.6, 4.0), (10.5, 1.7, 4.0), (11.0, 1.8, 4.0), (11.5, 1.9, 4.0),
             (12.25, 2.0, 4.0), (13.804, 2.0, 5.0))  # fmt: skip
    s_x0, s_x1 = next(
        ((b0, b1) for top, b0, b1 in bands if c_bar < top), (0.326 * c_bar - 1.5, 5.0)
    )
    k = 3.0
    s_a = (c_bar - 2.0 * math.log(10.0) * s_x0) / (s_x1 - s_x0) ** k
    return Material(
        name, electrons / molar, density, i_ev, 1.0 / inv_x0, c_bar, s_x0, s_x1, s_a, k, 0.0
    )


_I_GAS = {"C": 78.0, "F": 95.0}

#: The materials by name (PDG 2024; the gases derived as described above).
MATERIALS: Mapping[str, Material] = MappingProxyType(
    {
        m.name: m
        for m in (
            #        name, Z/A, ρ (g/cm³), I (eV), X0 (g/cm²), C̄, X0, X1, a, k, δ0
            Material("silicon", 0.49848, 2.329, 173.0, 21.82, 4.4355, 0.2015, 2.8716, 0.1492, 3.2546, 0.14),
            Material("aluminium", 0.48181, 2.699, 166.0, 24.01, 4.2395, 0.1708, 3.0127, 0.0802, 3.6345, 0.12),
            Material("iron", 0.46557, 7.874, 286.0, 13.84, 4.2911, -0.0012, 3.1531, 0.1468, 2.9632, 0.12),
            Material("lead", 0.39575, 11.35, 823.0, 6.37, 6.2018, 0.3776, 3.8073, 0.0936, 3.1608, 0.14),
            Material("polystyrene", 0.53768, 1.060, 68.7, 43.79, 3.2999, 0.1647, 2.5031, 0.1645, 3.2224, 0.0),
            _gas("C4F10", {"C": 4, "F": 10}, _I_GAS),
            _gas("CF4", {"C": 1, "F": 4}, _I_GAS),
        )
    }
)  # fmt: skip


def get_material(name: str) -> Material:
    """The material called ``name``; a KeyError lists the known ones and the closest match."""
    try:
        return MATERIALS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(MATERIALS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"unknown material {name!r} (known: {', '.join(MATERIALS)}){hint}"
        raise KeyError(msg) from None


@functools.cache
def _landau_table(size: int) -> npt.NDArray[np.float64]:
    from scipy import optimize, stats

    mode = optimize.minimize_scalar(
        lambda x: -stats.landau.pdf(x),
        bounds=(-1.0, 0.0),
        method="bounded",
        options={"xatol": 1e-10},
    ).x
    u = (np.arange(size) + 0.5) / size
    table = 0.5 * math.pi * (stats.landau.ppf(u) - mode)
    table.setflags(write=False)
    return table


def landau_table(size: int = 8192) -> npt.NDArray[np.float64]:
    """Read-only (size,) quantiles of (λ − λ_mode) in units of ξ at u = (k + ½)/size."""
    return _landau_table(size)
