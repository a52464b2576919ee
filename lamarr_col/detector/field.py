"""The dipole field as data: a tabulated on-axis B_y(z) profile that the kernels interpolate.

The default profile is a parametric approximation of LHCb's dipole, not a measured map: a
plateau of height ``b0`` and length ``flat_length`` centred on ``z_center`` with Gaussian
(error-function) fringes of width ``fringe_sigma``,

    B_y(z) = ± b0 · ½ [erf((z − z1)/(√2 σ)) − erf((z − z2)/(√2 σ))],  z1,2 = z_center ∓ flat_length/2,

whose integral is b0 · flat_length. The defaults (1.05 T peak, 3.81 m, σ = 0.7 m, centre 5.25 m)
give ∫B dl = 4.0 T·m, the LHCb bending power (IJMPA 30 (2015) 1530022), a peak near the
measured ≈ 1.05 T, and fringe fields of ~0.1 T at the UT and the first T station. MagDown
means B_y < 0, MagUp B_y > 0. Off the axis the kernels add Maxwell's first-order B_z = y·dB_y/dz
(see ``lamarr_col.kernels.field``). A user can replace the profile by their own table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lamarr_col.errors import ConfigError

__all__ = ["POLARITIES", "FieldMap", "dipole_profile"]

#: Sign of B_y for each magnet polarity.
POLARITIES = {"MagUp": 1.0, "MagDown": -1.0}

_Z_MIN, _Z_MAX, _DZ = -1000.0, 21000.0, 10.0  # mm: from before the VELO to past M5


def dipole_profile(
    z: npt.NDArray[np.float64],
    *,
    b0: float = 1.05,
    z_center: float = 5250.0,
    flat_length: float = 3810.0,
    fringe_sigma: float = 700.0,
) -> npt.NDArray[np.float64]:
    """|B_y| on the axis (T) at ``z`` (mm) for the parametric dipole (see the module doc)."""
    from scipy.special import erf

    z1, z2 = z_center - flat_length / 2, z_center + flat_length / 2
    s = math.sqrt(2.0) * fringe_sigma
    return np.asarray(b0 * 0.5 * (erf((z - z1) / s) - erf((z - z2) / s)), dtype=np.float64)


@dataclass(frozen=True)
class FieldMap:
    """On-axis B_y(z) samples (T) at ``z0 + i·dz`` (mm); the sign carries the polarity."""

    z0: float
    dz: float
    by: npt.NDArray[np.float64] = field(repr=False)
    description: str = ""

    def __post_init__(self) -> None:
        if not (self.dz > 0 and len(self.by) >= 2 and np.all(np.isfinite(self.by))):
            msg = f"field map: need dz > 0 and at least 2 finite samples ({self.description})"
            raise ConfigError(msg)

    @classmethod
    def parametric(cls, polarity: str = "MagDown", **params: float) -> FieldMap:
        """The parametric dipole with the given polarity and profile parameters."""
        if polarity not in POLARITIES:
            msg = f"unknown magnet polarity {polarity!r}; choose one of {', '.join(POLARITIES)}"
            raise ConfigError(msg)
        z = np.arange(_Z_MIN, _Z_MAX + _DZ / 2, _DZ)
        by = POLARITIES[polarity] * dipole_profile(z, **params)
        desc = f"parametric dipole {polarity} " + " ".join(f"{k}={v}" for k, v in params.items())
        return cls(_Z_MIN, _DZ, np.ascontiguousarray(by), desc.strip())

    @classmethod
    def uniform(cls, by: float, z_min: float, z_max: float) -> FieldMap:
        """A field of constant B_y between z_min and z_max (for tests and studies)."""
        z = np.arange(z_min, z_max + _DZ / 2, _DZ)
        return cls(z_min, _DZ, np.full(len(z), float(by)), f"uniform {by} T")

    @classmethod
    def from_table(cls, path: str | Path, polarity_sign: float = 1.0) -> FieldMap:
        """A user profile: a text/CSV file of ``z_mm, By_T`` rows on a uniform z grid."""
        path = Path(path)
        try:
            data = np.loadtxt(path, delimiter=",", comments="#", ndmin=2)
        except (OSError, ValueError) as err:
            msg = f"field table {path}: cannot read two comma-separated columns z_mm, By_T ({err})"
            raise ConfigError(msg) from None
        z, by = data[:, 0], data[:, 1]
        steps = np.diff(z)
        if len(z) < 2 or not np.allclose(steps, steps[0], rtol=1e-6) or steps[0] <= 0:
            msg = f"field table {path}: z must increase in equal steps"
            raise ConfigError(msg)
        return cls(float(z[0]), float(steps[0]), polarity_sign * by, f"table {path}")

    @property
    def z(self) -> npt.NDArray[np.float64]:
        return self.z0 + self.dz * np.arange(len(self.by), dtype=np.float64)

    def integral(self, z_from: float = -math.inf, z_to: float = math.inf) -> float:
        """∫ B_y dz on the axis between two planes, in T·mm (trapezoidal on the table)."""
        z = self.z
        inside = (z >= z_from) & (z <= z_to)
        return float(np.trapezoid(self.by[inside], z[inside]))

    def at(self, z: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """B_y on the axis (T) at ``z`` (mm), linear interpolation, 0 outside the table."""
        return np.interp(np.asarray(z, dtype=np.float64), self.z, self.by, left=0.0, right=0.0)
