"""Particles/s for single-kick propagation to a realistic list of planes and for RK transport.

The single kick reports (x, y, tx, ty) at 40 planes (VELO-like stations, UT, SciFi x/u/v layers,
RICH, ECAL, HCAL, M2–M5); RK transport goes to the last T station (z = 9410 mm) with the default
step (:data:`lamarr_col.detector.calibrate.DEFAULT_STEP`). Tracks are 2–200 GeV from the
luminous region. Timings are medians of 3 after a warm-up call (numba compiled and cached).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.timing import median_time

#: 40 planes (mm): 10 VELO-like, 4 UT, 12 SciFi, RICH1/2 entry and exit, ECAL, HCAL, M2–M5.
PLANES = (
    *(-175.0, -100.0, -25.0, 50.0, 125.0, 200.0, 300.0, 450.0, 600.0, 750.0),
    *(990.0, 2165.0),
    *(2300.0, 2350.0, 2600.0, 2650.0),
    *(7826.0, 7896.0, 7966.0, 8036.0, 8508.0, 8578.0, 8648.0, 8718.0, 9193.0, 9263.0),
    *(9333.0, 9403.0, 9500.0, 11900.0, 12490.0, 12650.0, 13335.0, 14000.0),
    *(15205.0, 16400.0, 17700.0, 18850.0, 19500.0, 20000.0),
)


def run(workdir: Path, quick: bool = False) -> dict[str, Any]:
    """Figures for the propagation kernels (``workdir`` is unused: nothing is written)."""
    del workdir
    from lamarr_col.detector.calibrate import (
        DEFAULT_STEP,
        calibrate_single_kick,
        kick_coefficients,
        sample_origin_states,
    )
    from lamarr_col.detector.field import FieldMap
    from lamarr_col.kernels.rk import transport
    from lamarr_col.kernels.single_kick import propagate_to_planes

    field = FieldMap.parametric("MagDown")
    coeffs = kick_coefficients(calibrate_single_kick(field, n_tracks=4000))
    rng = np.random.default_rng(5)
    n_kick = 100_000 if quick else 1_000_000
    n_rk = 20_000 if quick else 200_000
    planes = np.array(PLANES)
    states = sample_origin_states(n_kick, rng)
    out = np.empty((n_kick, len(planes), 4))
    propagate_to_planes(states, planes, *coeffs, out)  # warm-up: compile, fault the pages in

    kick_s, kick_times, _ = median_time(lambda: propagate_to_planes(states, planes, *coeffs, out))

    rk_states = np.ascontiguousarray(states[:n_rk])
    z_end = np.array([9410.0])
    rk_out = np.empty((n_rk, 1, 6))
    transport(rk_states[:100], z_end, field.z0, field.dz, field.by, DEFAULT_STEP, rk_out[:100])
    rk_s, rk_times, _ = median_time(
        lambda: transport(rk_states, z_end, field.z0, field.dz, field.by, DEFAULT_STEP, rk_out)
    )
    kick_rate, rk_rate = n_kick / kick_s, n_rk / rk_s
    return {
        "single_kick": {
            "particles": n_kick,
            "planes": len(planes),
            "median_s": kick_s,
            "times_s": kick_times,
            "particles_per_s": kick_rate,
            "output_bytes_per_s": kick_rate * len(planes) * 4 * 8,
        },
        "rk_to_T": {
            "particles": n_rk,
            "z_end_mm": 9410.0,
            "step_mm": DEFAULT_STEP,
            "median_s": rk_s,
            "times_s": rk_times,
            "particles_per_s": rk_rate,
        },
        "speedup_single_kick_over_rk": kick_rate / rk_rate,
        "threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1)),
    }


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp)), indent=1))
