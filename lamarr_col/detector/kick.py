"""Single-kick coefficients of a condition set: stored with it, or calibrated on demand.

A condition file stores, per magnet polarity, the coefficients fitted by
:func:`lamarr_col.detector.calibrate.calibrate_single_kick` together with a fingerprint of the
field they were fitted to (``[single_kick]`` keys ``"MagDown.z_kick"``, ...,
``"MagDown.field_fingerprint"``). When the fingerprint no longer matches the condition set's
field (a user changed the magnet), or nothing is stored, the coefficients are calibrated again
against Runge–Kutta transport through the field (about a second).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from lamarr_col.detector.conditions import ConditionSet
from lamarr_col.detector.field import FieldMap

__all__ = ["calibration_toml", "field_fingerprint", "single_kick_coefficients"]

_FINGERPRINT = "field_fingerprint"


def field_fingerprint(field: FieldMap) -> tuple[float, float, float]:
    """Moments ∫B dz, ∫z·B dz, ∫z²·B dz of the on-axis field (T·mm^k): what the kick depends on."""
    z, by = field.z, field.by
    return tuple(float(np.trapezoid(by * z**k, z)) for k in range(3))  # type: ignore[return-value]


@functools.lru_cache(maxsize=8)
def _calibrated(z0: float, dz: float, by: tuple[float, ...]) -> Mapping[str, tuple[float, ...]]:
    from lamarr_col.detector.calibrate import calibrate_single_kick

    field = FieldMap(z0, dz, np.array(by))
    table = dict(calibrate_single_kick(field))
    table[_FINGERPRINT] = field_fingerprint(field)
    return table


def _stored(conditions: ConditionSet) -> dict[str, tuple[float, ...]]:
    prefix = f"{conditions.polarity}."
    return {
        key[len(prefix) :]: tuple(values)
        for key, values in conditions.single_kick.items()
        if key.startswith(prefix)
    }


def single_kick_coefficients(conditions: ConditionSet) -> Mapping[str, tuple[float, ...]]:
    """The coefficients for the condition set's field and polarity (stored or recalibrated)."""
    stored = _stored(conditions)
    if _FINGERPRINT in stored and np.allclose(
        stored[_FINGERPRINT], field_fingerprint(conditions.field), rtol=1e-9, atol=1e-9
    ):
        return stored
    field = conditions.field
    return _calibrated(field.z0, field.dz, tuple(field.by.tolist()))


def calibration_toml(tables: Mapping[str, Mapping[str, tuple[float, ...]]]) -> str:
    """A ``[single_kick]`` section for several polarities (``{"MagDown": table, ...}``)."""
    from lamarr_col.detector.load import single_kick_toml

    flat = {
        f"{pol}.{key}": values for pol, table in tables.items() for key, values in table.items()
    }
    return single_kick_toml(flat)
