"""Particles/s for single-kick propagation and acceptance, for RK transport, and for the step.

- ``single_kick``: the propagation kernel alone, (x, y, tx, ty) stored at 40 planes;
- ``single_kick_acceptance``: the fused propagation + acceptance kernel of the flash path over
  the lhcb-run3 planes (target ≥ 2×10⁷ particles/s on 2 cores), and its ratio to RK;
- ``rk_to_T``: Runge–Kutta transport to the end of the T stations;
- ``propagation_step``: the whole step on gun events (Awkward in and out).


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

    # the flash path's hot loop: single kick + acceptance fused, on the lhcb-run3 planes
    from lamarr_col.detector import load_conditions
    from lamarr_col.flash.propagation import Propagation

    prep = Propagation.from_conditions(load_conditions("lhcb-run3"))
    fused = _fused_rate(prep, states)
    step = _step_rate(prep, quick)
    return {
        "single_kick_acceptance": {
            **fused,
            "ratio_to_rk": fused["particles_per_s"] / rk_rate,
        },
        "propagation_step": step,
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


def _fused_rate(prep: Any, states: np.ndarray) -> dict[str, Any]:
    """The fused kernel on preallocated outputs (the target), and with the wrapper that
    allocates them on every call (as the step does)."""
    from lamarr_col.kernels.trajectory import propagate_and_accept, propagate_and_accept_kernel

    n = len(states)
    z_end = np.full(n, np.inf)
    rules = np.asarray(prep.rules, dtype=np.int64)
    extra = np.array([prep.z_t, prep.z_ecal])
    g = prep.geometry
    planes = (
        np.asarray(prep.z_planes, dtype=np.float64),
        *(
            np.asarray(a, dtype=np.float64)
            for a in (g.x_max, g.y_max, g.r_min, g.r_max, g.hole_x, g.hole_y)
        ),
        np.asarray(g.group, dtype=np.int64),
    )
    outputs = (np.empty(n, np.uint32), np.empty(n, np.int8), np.empty((n, len(extra), 4)))

    def kernel() -> Any:
        return propagate_and_accept_kernel(  # type: ignore[call-arg]
            states, z_end, *planes, rules, *prep.coefficients, extra, *outputs
        )

    def wrapped() -> Any:
        return propagate_and_accept(
            states, z_end, prep.z_planes, prep.geometry, rules, prep.coefficients, extra
        )

    kernel()  # warm-up: compile (or load the cache), fault the output pages in
    wrapped()
    med, times, _ = median_time(kernel, repeats=7)
    med_alloc, times_alloc, _ = median_time(wrapped, repeats=7)
    return {
        "particles": n,
        "planes": len(prep.z_planes),
        "median_s": med,
        "times_s": times,
        "particles_per_s": n / med,
        "with_allocation": {
            "median_s": med_alloc,
            "times_s": times_alloc,
            "particles_per_s": n / med_alloc,
        },
    }


def _step_rate(prep: Any, quick: bool) -> dict[str, Any]:
    """The whole step on event batches: jagged → flat, kernels, flat → jagged."""
    import awkward as ak

    from lamarr_col.flash.propagation import propagate
    from lamarr_col.sources.gun import ParticleGun

    gun = ParticleGun.from_strings(species="pi+:0.5,K+:0.2,gamma:0.3", multiplicity="poisson:150")
    events = next(iter(gun.batches(500 if quick else 2000, 2000, seed=1)))
    n = int(ak.count(events.mcparticles.pid))
    propagate(events[:10], prep)
    med, times, _ = median_time(lambda: propagate(events, prep))
    return {
        "events": len(events),
        "particles": n,
        "median_s": med,
        "times_s": times,
        "particles_per_s": n / med,
    }


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp)), indent=1))
