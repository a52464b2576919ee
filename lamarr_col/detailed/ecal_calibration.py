"""Measure a condition set's electron and non-electron E/p densities on its own simulation.

The sample: Pythia 8 minimum-bias crossings at the condition set's pile-up with four e± from
a particle gun embedded in each (2–100 GeV, 2 < η < 5; :mod:`.embedding`), so that the
electrons are many and see the occupancy of real crossings (the crossings' own electrons,
mostly from photon conversions, join them). They go through the detailed chain
(:func:`.simulate.run_tracking`, :func:`.pid.run_pid` without ProbNN); the long tracks with a
matched ECAL cluster of match χ² ≤ :data:`.ecal_likelihood.CHI2_MAX` are split into true
electrons and non-electrons (π, K, p; ghosts and muons left out) and
:func:`.ecal_likelihood.fit_table` histograms their E/p in momentum bins.

``python -m lamarr_col.detailed.ecal_calibration --conditions NAME --events N [--seed S]
[--store | --output FILE]`` prints the numbers of tracks, the electron efficiency and pion
misidentification of DLL_e(ECAL) > 0 and > 2 in momentum bins (two-fold: the tracks of the
even crossings are scored with the table of the odd ones and the other way round; the
denominators are all long electrons and pions with a cluster, whatever its χ²), and with
``--store`` writes the table into the package's ``ecal_ll.json`` (``--output FILE``
elsewhere). The stored tables were made by (≈ 2–4 and 1.5 minutes)

    python -m lamarr_col.detailed.ecal_calibration --conditions lhcb-run3 --events 2000 --store
    python -m lamarr_col.detailed.ecal_calibration --conditions lhcb-run2 --events 4000 --store

and are re-measured the same way whenever the ECAL's reconstruction changes.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.ecal_likelihood import (
    CHI2_MAX,
    P_EDGES,
    EcalLikelihoodTable,
    electron_dll,
    fit_table,
    save_table,
)
from lamarr_col.detailed.embedding import embed
from lamarr_col.detailed.likelihood_table import package_file
from lamarr_col.detector import load_conditions
from lamarr_col.detector.conditions import ConditionSet
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.sources.gun import ParticleGun

__all__ = [
    "ELECTRON_GUN",
    "EcalSample",
    "calibration_sample",
    "collect",
    "main",
    "measure_table",
    "performance",
]

#: the embedded electrons
ELECTRON_GUN = {"species": "e-:1,e+:1", "p": "flat:2000:100000", "multiplicity": "4"}
_HADRONS = (211, 321, 2212)
_BATCH = 100


@dataclass(frozen=True)
class EcalSample:
    """Long tracks of electrons and hadrons with a matched cluster: momentum (MeV), E/p, match
    χ², |PDG id| of their particle and index of their crossing."""

    p: npt.NDArray[np.float64]
    e_over_p: npt.NDArray[np.float64]
    chi2: npt.NDArray[np.float64]
    true_pid: npt.NDArray[np.int64]
    crossing: npt.NDArray[np.int64]

    @property
    def is_electron(self) -> npt.NDArray[np.bool_]:
        return self.true_pid == 11

    @property
    def in_fit(self) -> npt.NDArray[np.bool_]:
        """The tracks the table is fitted on: match χ² ≤ ``CHI2_MAX``."""
        return self.chi2 <= CHI2_MAX

    def subset(self, sel: npt.NDArray[np.bool_]) -> EcalSample:
        return EcalSample(*(a[sel] for a in self.arrays()))

    def arrays(self) -> tuple[npt.NDArray, ...]:
        return (self.p, self.e_over_p, self.chi2, self.true_pid, self.crossing)


def calibration_sample(conditions: ConditionSet, n_events: int, seed: int) -> ak.Array:
    """Pythia crossings at the condition set's pile-up with the electron gun embedded."""
    from lamarr_col.sources.pythia import PythiaSource

    source = PythiaSource(pileup=conditions.pileup)
    events = ak.concatenate(list(source.batches(n_events, _BATCH, seed=seed)))
    gun = ParticleGun.from_strings(
        species=ELECTRON_GUN["species"],
        p=ELECTRON_GUN["p"],
        multiplicity=ELECTRON_GUN["multiplicity"],
    )
    return embed(events, gun, seed=seed)


def collect(conditions: ConditionSet, n_events: int, seed: int) -> EcalSample:
    """The long electron and hadron tracks with a cluster of ``n_events`` calibration
    crossings."""
    from lamarr_col.detailed.pid import reconstructed_momentum, run_pid
    from lamarr_col.detailed.simulate import run_tracking

    events = calibration_sample(conditions, n_events, seed)
    parts: list[tuple[npt.NDArray, ...]] = []
    for lo in range(0, len(events), _BATCH):
        out = run_tracking(events[lo : lo + _BATCH], conditions, seed=seed)
        pid = run_pid(out, conditions, seed=seed, probnn=False)
        row = out.found.row
        true_pid = np.where(row >= 0, np.abs(out.particles["pid"][np.maximum(row, 0)]), 0)
        eop = np.asarray(pid.fields["ecal_e_over_p"], dtype=np.float64)
        keep = (out.found.track_type == TRACK_TYPES["LONG"]) & np.isfinite(eop)
        keep &= (true_pid == 11) | np.isin(true_pid, _HADRONS)
        chi2 = np.asarray(pid.fields["ecal_chi2"], dtype=np.float64)
        p = reconstructed_momentum(out)
        crossing = lo + np.asarray(out.found.event, dtype=np.int64)
        true_pid = true_pid.astype(np.int64)
        parts.append(tuple(a[keep] for a in (p, eop, chi2, true_pid, crossing)))
    return EcalSample(*(np.concatenate(a) for a in zip(*parts, strict=True)))


def _fit(sample: EcalSample, description: str) -> EcalLikelihoodTable:
    fit = sample.subset(sample.in_fit)
    return fit_table(fit.p, fit.e_over_p, fit.is_electron, description)


def measure_table(
    conditions: ConditionSet, n_events: int, seed: int
) -> tuple[EcalLikelihoodTable, EcalSample]:
    """The fitted table and the sample it was made from."""
    sample = collect(conditions, n_events, seed)
    fit = sample.subset(sample.in_fit)
    n_e = int(fit.is_electron.sum())
    description = (
        f"{n_events} Pythia crossings of {conditions.name} (seed {seed}) with 4 embedded e± "
        f"of 2–100 GeV: long tracks with a cluster of match χ² ≤ {CHI2_MAX:g}, {n_e} electrons, "
        f"{len(fit.p) - n_e} non-electrons (π, K, p)"
    )
    return _fit(sample, description), sample


def performance(sample: EcalSample, conditions_name: str) -> list[dict[str, float]]:
    """Per momentum bin (``P_EDGES``) and overall: the numbers of electrons and pions with a
    cluster and the fractions with DLL_e(ECAL) > 0 and > 2, two-fold (module docstring)."""
    dll = np.zeros(len(sample.p))
    for half in (0, 1):
        train = sample.crossing % 2 == half
        table = _fit(sample.subset(train), "half")
        test = ~train
        dll[test] = electron_dll(
            conditions_name, sample.p[test], sample.e_over_p[test], sample.chi2[test], table=table
        )
    is_e, is_pi = sample.is_electron, sample.true_pid == 211
    rows = []
    edges = (*itertools.pairwise(P_EDGES), (P_EDGES[0], P_EDGES[-1]))
    for lo, hi in edges:
        in_bin = (sample.p >= lo) & (sample.p < hi)
        e, pi = in_bin & is_e, in_bin & is_pi
        row = {"p_lo": lo / 1000.0, "p_hi": hi / 1000.0, "n_e": int(e.sum()), "n_pi": int(pi.sum())}
        for cut in (0.0, 2.0):
            row[f"eff_{cut:g}"] = float(np.mean(dll[e] > cut)) if e.any() else np.nan
            row[f"misid_{cut:g}"] = float(np.mean(dll[pi] > cut)) if pi.any() else np.nan
        rows.append(row)
    return rows


def _report(table: EcalLikelihoodTable, sample: EcalSample, conditions_name: str) -> str:
    fit = sample.subset(sample.in_fit)
    n_h = {pid: int((fit.true_pid == pid).sum()) for pid in _HADRONS}
    lines = [
        table.sample,
        (
            f"with a cluster: {int(sample.is_electron.sum())} electrons, "
            f"{int((~sample.is_electron).sum())} non-electrons; with χ² ≤ {CHI2_MAX:g} "
            f"(fitted): {int(fit.is_electron.sum())} electrons, "
            f"π/K/p {n_h[211]}/{n_h[321]}/{n_h[2212]}"
        ),
        "p (GeV)       n_e   n_pi   eff(DLL>0) misID(DLL>0)  eff(DLL>2) misID(DLL>2)",
    ]
    for r in performance(sample, conditions_name):
        lines.append(
            f"{r['p_lo']:5.0f}–{r['p_hi']:<5.0f} {r['n_e']:6d} {r['n_pi']:6d}   "
            f"{r['eff_0']:9.3f} {r['misid_0']:12.4f} {r['eff_2']:11.3f} {r['misid_2']:12.4f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lamarr_col.detailed.ecal_calibration", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--conditions", default="lhcb-run3")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", action="store_true", help="write into the package's table")
    where.add_argument("--output", type=Path, help="write into this JSON file instead")
    args = parser.parse_args(argv)
    conditions = load_conditions(args.conditions)
    start = time.perf_counter()
    table, sample = measure_table(conditions, args.events, args.seed)
    print(_report(table, sample, conditions.name))  # noqa: T201
    print(f"{args.events} crossings in {time.perf_counter() - start:.0f} s")  # noqa: T201
    target = package_file("ecal_ll.json") if args.store else args.output
    if target is not None:
        save_table(conditions.name, table, target)
        print(f"stored in {target}")  # noqa: T201
    fit = sample.subset(sample.in_fit)
    return 0 if fit.is_electron.any() and (~fit.is_electron).any() else 1


if __name__ == "__main__":
    raise SystemExit(main())
