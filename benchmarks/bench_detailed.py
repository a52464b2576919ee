"""Detailed-simulation transport: charged particles/s through field and material.

Charged pions, kaons and protons from a particle gun (pT exponential, mean 1.5 GeV, 2 < η < 5)
are transported with RK4 (50 mm steps) and the material of every lhcb-run3 plane, to the end of
the T stations and through the whole detector. Medians of 3 after a warm-up (numba compiled).
Issue 4's target: ≥ 2×10⁴ charged particles/s on this machine.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from benchmarks.timing import median_time


def run(workdir: Path, quick: bool = False) -> dict[str, Any]:
    """Figures for the transport with material (``workdir`` is unused)."""
    del workdir
    from lamarr_col.detailed.transport import COLUMNS, transport_particles
    from lamarr_col.detector import load_conditions
    from lamarr_col.sources.gun import ParticleGun

    conditions = load_conditions("lhcb-run3")
    gun = ParticleGun.from_strings(
        species="pi+:0.35,pi-:0.35,K+:0.1,K-:0.1,p:0.1", multiplicity="100"
    )
    events = next(iter(gun.batches(200 if quick else 1000, 1000, seed=1)))
    m = events.mcparticles
    counts = ak.to_numpy(ak.num(m, axis=1))
    columns = {c: ak.to_numpy(ak.flatten(m[c])) for c in COLUMNS}
    event_of = np.repeat(ak.to_numpy(events.event), counts)
    index = ak.to_numpy(ak.flatten(ak.local_index(m, axis=1)))
    n = len(event_of)
    planes = conditions.planes()
    z_t = float(planes["z"][planes["group"] == 4].max())

    results: dict[str, Any] = {"particles": n}
    for label, z_max in (("to_end_of_T", z_t), ("whole_detector", np.inf)):

        def once(z_max: float = z_max) -> Any:
            return transport_particles(columns, event_of, index, conditions, seed=2, z_max=z_max)

        once()
        med, times, res = median_time(once)
        results[label] = {
            "median_s": med,
            "times_s": times,
            "particles_per_s": n / med,
            "stop_reasons": {
                int(k): int(v)
                for k, v in zip(*np.unique(res.reason, return_counts=True), strict=True)
            },
        }
    return results


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp)), indent=1))
