"""Measure a condition set's muon and non-muon D² densities on its own simulation.

The sample: Pythia 8 minimum-bias crossings at the condition set's pile-up with four μ± from
a particle gun embedded in each (3–100 GeV, 2 < η < 5; :mod:`.embedding`), so that the muons
are many and see the occupancy of real crossings. They go through the detailed chain; the
long tracks that pass isMuon are split into true muons and non-muons (π, K, p: decays in
flight included, as they are what isMuon lets through) and :func:`.muon_likelihood.fit_table`
histograms their D² in momentum bins.

``python -m lamarr_col.detailed.muon_calibration --conditions NAME --events N [--store]``
prints the numbers of tracks and, with ``--store``, writes the table into the package's
``muon_ll.json`` (``--output FILE`` elsewhere). 400 crossings take about a minute.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import awkward as ak
import numpy as np

from lamarr_col.detailed.embedding import embed
from lamarr_col.detailed.muon_likelihood import MuonLikelihoodTable, fit_table, save_table
from lamarr_col.detector import load_conditions
from lamarr_col.detector.conditions import ConditionSet
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.sources.gun import ParticleGun

__all__ = ["MUON_GUN", "calibration_sample", "main", "measure_table"]

#: the embedded muons
MUON_GUN = {"species": "mu-:1,mu+:1", "p": "flat:3000:100000", "multiplicity": "4"}
_HADRONS = (211, 321, 2212)


def calibration_sample(conditions: ConditionSet, n_events: int, seed: int) -> ak.Array:
    """Pythia crossings at the condition set's pile-up with the muon gun embedded."""
    from lamarr_col.sources.pythia import PythiaSource

    source = PythiaSource(pileup=conditions.pileup)
    events = ak.concatenate(list(source.batches(n_events, 100, seed=seed)))
    gun = ParticleGun.from_strings(
        species=MUON_GUN["species"], p=MUON_GUN["p"], multiplicity=MUON_GUN["multiplicity"]
    )
    return embed(events, gun, seed=seed)


def measure_table(
    conditions: ConditionSet, n_events: int, seed: int
) -> tuple[MuonLikelihoodTable, int, int]:
    """The fitted table and the numbers of muons and non-muons it was made from."""
    from lamarr_col.detailed.pid import reconstructed_momentum, run_pid
    from lamarr_col.detailed.simulate import run_tracking

    events = calibration_sample(conditions, n_events, seed)
    p_all, d2_all, truth_all = [], [], []
    for lo in range(0, len(events), 100):
        out = run_tracking(events[lo : lo + 100], conditions, seed=seed)
        pid = run_pid(out, conditions, seed=seed)
        row = out.found.row
        true_pid = np.where(row >= 0, np.abs(out.particles["pid"][np.maximum(row, 0)]), 0)
        keep = (out.found.track_type == TRACK_TYPES["LONG"]) & pid.muon.is_muon
        keep &= (true_pid == 13) | np.isin(true_pid, _HADRONS)
        p_all.append(reconstructed_momentum(out)[keep])
        d2_all.append(pid.muon.d2[keep])
        truth_all.append(true_pid[keep] == 13)
    p, d2, truth = (np.concatenate(a) for a in (p_all, d2_all, truth_all))
    sample = (
        f"{n_events} Pythia crossings of {conditions.name} (seed {seed}) with 4 embedded μ± "
        f"of 3–100 GeV: {int(truth.sum())} muons, {int((~truth).sum())} non-muons"
    )
    return fit_table(p, d2, truth, sample), int(truth.sum()), int((~truth).sum())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lamarr_col.detailed.muon_calibration", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--conditions", default="lhcb-run3")
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", action="store_true", help="write into the package's table")
    parser.add_argument("--output", type=Path, help="write into this JSON file instead")
    args = parser.parse_args(argv)
    conditions = load_conditions(args.conditions)
    table, n_mu, n_other = measure_table(conditions, args.events, args.seed)
    print(table.sample)  # noqa: T201
    target = args.output
    if args.store and target is None:
        target = Path(str(resources.files("lamarr_col.detailed").joinpath("muon_ll.json")))
    if target is not None:
        save_table(conditions.name, table, target)
        print(f"stored in {target}")  # noqa: T201
    return 0 if n_mu and n_other else 1


if __name__ == "__main__":
    raise SystemExit(main())
