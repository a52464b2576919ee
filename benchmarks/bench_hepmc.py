"""Reading HepMC2/HepMC3 files: ``HepMCSource`` batches versus a plain pyhepmc event loop.

Writes Gauss-like files (about 7 collisions of ~100 particles per crossing, collisions
numbered 1..n), then times, as the median of 3 repeats, (a) ``HepMCSource.batches`` and (b) the
loop a user would write with pyhepmc (``for p in event.particles: p.momentum.px ...``) that
extracts the same particle columns without grouping, unit conversion or mother links.
Run ``python benchmarks/bench_hepmc.py [n_crossings]``; prints JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyhepmc

from lamarr_col.sources.hepmc import HepMCSource
from lamarr_col.sources.hepmc_write import random_collision, write_hepmc

COLLISIONS_PER_CROSSING = 7
HADRONS_PER_COLLISION = 60  # plus decay products, parton, string and beams: ~100 particles
REPEATS = 3


def _median_seconds(task: Callable[[], int]) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = task()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _read_with_source(path: Path) -> int:
    source = HepMCSource(path)
    for _ in source.batches(None, 500):
        pass
    return source.stats.particles


def _read_with_plain_loop(path: Path) -> int:
    """What a user would write: Python objects, one particle at a time."""
    kept = 0
    with pyhepmc.open(path) as f:
        for event in f:
            cols: dict[str, list[float]] = {k: [] for k in ("pid", "px", "py", "pz", "e", "vz")}
            for p in event.particles:
                if p.status not in (1, 2, 999, 777, 888, 889):
                    continue
                mom = p.momentum
                cols["pid"].append(p.pid)
                cols["px"].append(mom.px)
                cols["py"].append(mom.py)
                cols["pz"].append(mom.pz)
                cols["e"].append(mom.e)
                vertex = p.production_vertex
                cols["vz"].append(vertex.position.z if vertex is not None else 0.0)
            kept += len(cols["pid"])
    return kept


def run(workdir: Path, n_events: int = 2000) -> dict[str, Any]:
    """Write the files into ``workdir``, time both readers, return the figures."""
    rng = np.random.default_rng(2026)
    collisions = [
        random_collision(rng, k, HADRONS_PER_COLLISION)
        for _ in range(n_events)
        for k in range(1, COLLISIONS_PER_CROSSING + 1)
    ]
    results: dict[str, Any] = {
        "crossings": n_events,
        "collisions_per_crossing": COLLISIONS_PER_CROSSING,
        "repeats": REPEATS,
    }
    for fmt in ("HepMC2", "HepMC3"):
        path = write_hepmc(workdir / f"bench.{fmt.lower()}", collisions, format=fmt)
        HepMCSource(path)  # warm-up: the PDG table is built once per process
        source_s, particles = _median_seconds(lambda p=path: _read_with_source(p))
        loop_s, loop_particles = _median_seconds(lambda p=path: _read_with_plain_loop(p))
        results[fmt] = {
            "file_mb": round(path.stat().st_size / 1e6, 1),
            "kept_particles": particles,
            "source_s": round(source_s, 3),
            "source_crossings_per_s": round(n_events / source_s),
            "source_particles_per_s": round(particles / source_s),
            "plain_loop_s": round(loop_s, 3),
            "plain_loop_crossings_per_s": round(n_events / loop_s),
            "plain_loop_particles_per_s": round(loop_particles / loop_s),
            "speedup": round(loop_s / source_s, 2),
        }
    return results


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp), n), indent=2))
