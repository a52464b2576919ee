"""Measure a condition set's VELO–T matching resolutions on its own simulation.

The matching (:mod:`lamarr_col.detailed.matching`) weighs the x, y and ty mismatch of a VELO
and a T segment by resolutions that depend on the detector. This module measures them:

1. particle-gun samples of π± with 2 < η < 5, one per momentum range of :data:`P_RANGES` (so
   that every momentum is measured, which minimum bias, mostly soft, does not give), go
   through the detailed chain with the matching off (each particle's own segments joined);
2. for every particle with a VELO and a T segment, :func:`~.matching.matching_residuals`
   gives the mismatches at the matched momentum;
3. :func:`~.matching.fit_resolution` fits σ(p) = √(a² + (b/p)² + (c/p²)²) to the half-width of
   the central 68 % in logarithmic p bins from 1.5 to 200 GeV.

``python -m lamarr_col.detailed.matching_calibration --conditions NAME_OR_FILE`` prints the
``[matching]`` table for the condition-set file, and the fraction of true pairs the χ² cut
keeps with it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.matching import (
    MatchingRules,
    fit_resolution,
    matching_residuals,
    segment_lines,
)
from lamarr_col.detailed.recognition import RecognitionRules, _segments, segment_counts
from lamarr_col.detector.conditions import ConditionSet

if TYPE_CHECKING:
    from lamarr_col.detailed.simulate import TrackingOutput

__all__ = ["MatchingCalibration", "main", "measure_matching", "true_pair_lines"]

#: p bins (GeV) of the fit
P_EDGES = np.geomspace(1.5, 200.0, 25)
#: momentum ranges (GeV) of the gun samples: each decade gets about the same number of pairs
P_RANGES = ((1.5, 5.0), (5.0, 20.0), (20.0, 60.0), (60.0, 200.0))
#: placeholder resolutions for the residual pass (they only scale the χ², not the mismatches)
_UNIT = (1.0, 0.0, 0.0)


@dataclass(frozen=True)
class MatchingCalibration:
    """The measured (a, b, c) per residual, the number of true pairs used and the fraction of
    them inside the χ² cut of ``MatchingRules().chi2_max`` with these resolutions."""

    sigma: dict[str, tuple[float, float, float]]
    pairs: int
    kept: float

    def toml(self) -> str:
        """The ``[matching]`` table of a condition-set file."""
        lines = ["[matching]"]
        for name, abc in self.sigma.items():
            lines.append(f"sigma_{name} = [{', '.join(f'{v:.3g}' for v in abc)}]")
        return "\n".join(lines) + "\n"


def true_pair_lines(
    out: TrackingOutput, conditions: ConditionSet, rules: RecognitionRules | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """VELO and T lines (m, 5) of the particles of a :class:`~.simulate.TrackingOutput` with
    both segments (the recognition's rules)."""
    hits = out.hits
    n = len(out.particle_event_index)
    velo_ok, _, t_ok = _segments(segment_counts(hits, conditions, n), rules or RecognitionRules())
    both = velo_ok & t_ok
    true = np.flatnonzero(hits.row >= 0)
    owner = hits.row[true]
    v = segment_lines(hits, conditions, owner, true, n, "VELO")[both]
    t = segment_lines(hits, conditions, owner, true, n, "T")[both]
    ok = np.all(np.isfinite(v), axis=1) & np.all(np.isfinite(t), axis=1)
    return v[ok], t[ok]


def measure_matching(
    conditions: ConditionSet, *, events: int = 40, seed: int = 1
) -> MatchingCalibration:
    """Measure the resolutions on particle-gun samples with run seed ``seed``: ``events`` events
    of 50 π± (2 < η < 5) in each momentum range of :data:`P_RANGES` (module docstring)."""
    from lamarr_col.detailed.simulate import DetailedOptions, run_tracking
    from lamarr_col.rng import EventKeys
    from lamarr_col.sources.gun import ParticleGun

    options = DetailedOptions(matching=None)
    v_all, t_all = [], []
    for k, (lo, hi) in enumerate(P_RANGES):
        gun = ParticleGun.from_strings(
            species="pi+,pi-", p=f"flat:{lo * 1e3!r}:{hi * 1e3!r}", multiplicity="50"
        )
        numbers = np.arange(k * events, (k + 1) * events)
        out = run_tracking(gun.generate(EventKeys(seed), numbers), conditions, seed=seed,
                           options=options)  # fmt: skip
        v, t = true_pair_lines(out, conditions, options.rules)
        v_all.append(v)
        t_all.append(t)
    v_lines, t_lines = np.concatenate(v_all), np.concatenate(t_all)
    unit = MatchingRules(sigma_dx=_UNIT, sigma_dy=_UNIT, sigma_dty=_UNIT)
    res = matching_residuals(v_lines, t_lines, conditions, unit)
    sigma = {k: fit_resolution(res["p"], res[k], P_EDGES) for k in ("dx", "dy", "dty")}
    rules = MatchingRules(sigma_dx=sigma["dx"], sigma_dy=sigma["dy"], sigma_dty=sigma["dty"])
    chi2 = matching_residuals(v_lines, t_lines, conditions, rules)["chi2"]
    above = res["p"] * 1000.0 >= rules.p_min
    kept = float(np.mean(chi2[above] < rules.chi2_max)) if above.any() else float("nan")
    return MatchingCalibration(sigma, int(above.sum()), kept)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the ``[matching]`` table (module docstring)."""
    from lamarr_col.detector import load_conditions

    parser = argparse.ArgumentParser(prog="python -m lamarr_col.detailed.matching_calibration")
    parser.add_argument("--conditions", default="lhcb-run3", help="name or TOML file")
    parser.add_argument("--events", type=int, default=40, help="gun events per p range")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    conditions = load_conditions(args.conditions)
    # the chain must not need the resolutions being measured
    conditions = replace(conditions, matching={})
    cal = measure_matching(conditions, events=args.events, seed=args.seed)
    print(cal.toml(), end="")  # noqa: T201
    print(  # noqa: T201
        f"# {args.events} gun events per p range, seed {args.seed}: {cal.pairs} true pairs above "
        f"p_min, {cal.kept:.2%} inside χ² < {MatchingRules().chi2_max:g}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
