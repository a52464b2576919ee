"""The magnetic field inside kernels: a tabulated on-axis profile B_y(z) with Maxwell's
first-order off-axis terms.

Representation (flat buffers, Tesla and mm):
    z0, dz       position of the first sample and spacing of the table (mm)
    by_table     B_y on the beam axis at z0 + i·dz (T); the sign carries the polarity
Off axis, the field is B_y(x, y, z) = B_y(z), B_z = y · dB_y/dz, B_x = 0: curl-free and
divergence-free to first order in the distance from the axis, which is what matters inside
LHCb's acceptance (|y| ≲ 2 m where B_y varies over metres). Outside the table the field is 0.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["KAPPA", "field_at", "field_at_reference"]

#: p [MeV] = KAPPA · B [T] · R [mm] for a unit charge (c in MeV/(T·mm)).
KAPPA = 0.299792458


@nb.njit(cache=True, fastmath=False)
def field_at(x: float, y: float, z: float, z0: float, dz: float, by_table: np.ndarray) -> tuple:  # noqa: ARG001
    """(B_x, B_y, B_z) in T at (x, y, z) in mm (x enters only at higher orders)."""
    u = (z - z0) / dz
    n = by_table.shape[0]
    if u < 0.0 or u > n - 1:
        return 0.0, 0.0, 0.0
    i = min(int(u), n - 2)
    f = u - i
    by = by_table[i] * (1.0 - f) + by_table[i + 1] * f
    dby_dz = (by_table[i + 1] - by_table[i]) / dz
    return 0.0, by, y * dby_dz


def field_at_reference(
    x: float, y: float, z: float, z0: float, dz: float, by_table: np.ndarray
) -> tuple[float, float, float]:
    """Plain-Python twin of :func:`field_at` (numpy interpolation), for tests."""
    del x
    n = len(by_table)
    zs = z0 + dz * np.arange(n)
    if z < zs[0] or z > zs[-1]:
        return 0.0, 0.0, 0.0
    by = float(np.interp(z, zs, by_table))
    i = min(int((z - z0) // dz), n - 2)
    return 0.0, by, y * float(by_table[i + 1] - by_table[i]) / dz
