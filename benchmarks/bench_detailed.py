"""Detailed simulation: charged particles/s of the transport and of the whole tracking chain.

- transport: charged pions, kaons and protons from a particle gun (pT exponential, mean
  1.5 GeV, 2 < η < 5) are transported with RK4 (50 mm steps) and the material of every
  lhcb-run3 plane, to the end of the T stations and through the whole detector;
- ``chain``: :func:`lamarr_col.detailed.simulate.simulate_tracking` (decays in flight,
  transport, hits, track finding, Kalman fit, particle identification, output) on Pythia8
  minimum-bias crossings at Run 3 pile-up (ν = 7.6), with the time of each stage; charged
  particles are those of the generated crossings. The PID cost per track: the time of the PID
  stages (``pid_transport``, ``muon``, ``rich``) over the tracks with a momentum (long,
  upstream, downstream). The ECAL's cost per crossing (``ecal_ms_per_event``: showers,
  digitisation, clustering, corrections, track matching, E/p) and its clusters per crossing.

Medians of 3 after a warm-up (numba compiled). Targets on this machine: ≥ 2×10⁴ charged
particles/s for the tracking chain (issue 4), ≥ 10⁴ with the PID (issue 5).
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
    results["chain"] = _chain(conditions, quick)
    return results


_PID_STAGES = ("pid_transport", "muon", "rich")


def _chain(conditions: Any, quick: bool) -> dict[str, Any]:
    """The whole tracking chain on Pythia8 minimum bias at Run 3 pile-up."""
    from lamarr_col.detailed.simulate import simulate_tracking
    from lamarr_col.sources.beam import RUN3_PILEUP, PileUp
    from lamarr_col.sources.pythia import PythiaSource

    source = PythiaSource(preset="minbias", pileup=PileUp(nu=RUN3_PILEUP))
    n_events = 20 if quick else 100
    events = next(iter(source.batches(n_events, n_events, seed=3)))
    charged = int(ak.sum(events.mcparticles.charge != 0))
    simulate_tracking(events[:5], conditions, seed=3)  # warm-up: numba caches
    stage_runs: list[dict[str, float]] = []

    def once() -> Any:
        timings: dict[str, float] = {}
        stage_runs.append(timings)
        return simulate_tracking(events, conditions, seed=3, timings=timings)

    med, times, out = median_time(once)
    median_run = stage_runs[int(np.argsort(times)[len(times) // 2])]
    tracks = ak.flatten(out.tracks)
    with_p = int(ak.sum((tracks.track_type >= 3) & (tracks.track_type <= 5)))
    pid_s = sum(median_run.get(k, 0.0) for k in _PID_STAGES)
    return {
        "events": n_events,
        "charged_particles": charged,
        "tracks": len(tracks),
        "long_tracks": int(ak.sum(tracks.track_type == 3)),
        "median_s": med,
        "times_s": times,
        "events_per_s": n_events / med,
        "charged_particles_per_s": charged / med,
        "stage_s": median_run,
        "pid_s": pid_s,
        "pid_us_per_track": 1e6 * pid_s / max(with_p, 1),
        "ecal_s": median_run.get("ecal", 0.0),
        "ecal_ms_per_event": 1e3 * median_run.get("ecal", 0.0) / n_events,
        "clusters_per_event": float(ak.mean(ak.num(out.clusters))),
        "photon_candidates_per_event": float(ak.mean(ak.sum(out.clusters.is_photon, axis=1))),
    }


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp)), indent=1))
