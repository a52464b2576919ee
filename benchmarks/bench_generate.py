"""Events/s from each source into a ROOT file, the way ``lamarr-col generate`` runs them.

Each source is timed end to end (generation or reading, event-model assembly, writing with zstd)
over the same number of events, median of ``repeats`` runs. Pythia's one-off initialisation
(about 4 s) is excluded by warming the source up first; it is reported separately.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.timing import median_time, peak_python_memory
from lamarr_col.job import generate
from lamarr_col.sources.base import Source


def _rate(
    make_source: Any, out: Path, n_events: int, batch_size: int, repeats: int
) -> dict[str, Any]:
    def once() -> Any:
        return generate(make_source(), out, n_events=n_events, batch_size=batch_size, seed=1)

    med, times, summary = median_time(once, repeats)
    return {
        "events": summary.events,
        "particles": summary.particles,
        "median_s": med,
        "times_s": times,
        "events_per_s": summary.events / med,
        "particles_per_s": summary.particles / med,
        "output_bytes": out.stat().st_size,
    }


def run(workdir: Path, quick: bool = False) -> dict[str, Any]:
    from lamarr_col.sources.gun import ParticleGun
    from lamarr_col.sources.hepmc import HepMCSource
    from lamarr_col.sources.ntuple import NtupleSource
    from lamarr_col.sources.pythia import PythiaSource

    repeats = 3
    results: dict[str, Any] = {}
    n_gun = 2_000 if quick else 20_000

    def gun() -> Source:
        return ParticleGun.from_strings(
            species="pi+:0.6,K+:0.3,p:0.1", pt="exp:1500", multiplicity="poisson:50"
        )

    results["gun"] = _rate(gun, workdir / "gun.root", n_gun, 1000, repeats)

    def gun_decay() -> Source:
        return ParticleGun.from_strings(
            species="Lambda_b0",
            p="flat:20000:200000",
            decay="Lambda_b0 -> (Lambda_c+ -> p+ K- pi+) mu- anti-nu_mu",
        )

    results["gun_decay"] = _rate(gun_decay, workdir / "gun_decay.root", n_gun, 1000, repeats)

    n_py = 50 if quick else 300
    start = time.perf_counter()
    pythia = PythiaSource("minbias")
    list(pythia.batches(1, 1, seed=99))  # initialise both generators outside the timing
    init_s = time.perf_counter() - start
    results["pythia_minbias_run3"] = _rate(
        lambda: pythia, workdir / "pythia.root", n_py, 100, repeats
    )
    results["pythia_minbias_run3"]["init_s"] = init_s
    # the same number of collisions straight from Pythia: what the event model and I/O add
    from lamarr_col.rng import EventKeys

    events = np.arange(n_py, dtype=np.uint64)
    collisions = int(pythia.pileup.sample(EventKeys(1), events).sum())
    raw = pythia._minbias_generator()
    raw_s, _, _ = median_time(lambda: raw.nextBatch(collisions), repeats)
    entry = results["pythia_minbias_run3"]
    entry["collisions"] = collisions
    entry["pythia_nextBatch_only_s"] = raw_s
    entry["overhead_fraction"] = entry["median_s"] / raw_s - 1.0
    results["pythia_minbias_run3"]["peak_python_memory_bytes"] = peak_python_memory(
        lambda: generate(pythia, workdir / "pythia_mem.root", n_events=n_py, batch_size=100)
    )

    from lamarr_col.sources.hepmc_write import random_collision, write_hepmc

    # Gauss-like file: crossings of 7 collisions numbered 1..7, in MeV and mm
    rng = np.random.default_rng(1)
    n_hepmc = 100 if quick else 1000
    collisions = [random_collision(rng, k, 60) for _ in range(n_hepmc) for k in range(1, 8)]
    hepmc = write_hepmc(workdir / "gauss.hepmc", collisions, format="HepMC2", momentum_unit="MEV")
    results["hepmc2"] = _rate(
        lambda: HepMCSource(hepmc), workdir / "from_hepmc.root", None, 100, repeats
    )
    results["root_ntuple"] = _rate(
        lambda: NtupleSource(workdir / "pythia.root"),
        workdir / "from_root.root",
        None,
        100,
        repeats,
    )
    return results
