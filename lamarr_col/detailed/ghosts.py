"""Ghost probability of the detailed simulation's tracks: a logistic regression on track quality.

Only long tracks can be ghosts in this simulation (wrong VELO–T matches, see
:mod:`lamarr_col.detailed.matching`), so only they get a ghost probability; every other track
gets 0. For a long track the probability is σ(w · f) with the features (``FEATURES``)

    1, ln(χ²/ndof), ln(1 + match χ²), ln(p / GeV), ndof / 10, VELO hits / 10, T hits / 10,
    ln(nTracks)

each standardised with the training sample's mean and spread; nTracks is the event's number of
reconstructed tracks (the occupancy). A track whose fit failed gets probability 1.

The weights are fitted by maximum likelihood (iteratively reweighted least squares, a small
L2 term) on the simulation's own truth (ghost: ``row`` −1) and stored in ``ghost_prob.json``
next to this module with the sample they came from and the sha256 of the weights. Retrain
(e.g. after changing the detector or the matching) with::

    python -m lamarr_col.detailed.ghosts --events 400 --seed 1 [--conditions lhcb-run3]

which also prints the area under the ROC curve on a held-out half. LHCb's own ghost
probability is a neural network on more inputs; this is the honest minimum.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.fit import FitResult
from lamarr_col.detailed.recognition import FoundTracks
from lamarr_col.errors import ConfigError
from lamarr_col.kernels.acceptance import TRACK_TYPES

__all__ = ["FEATURES", "GhostModel", "fit_logistic", "ghost_features", "ghost_probability"]

FEATURES = (
    "one",
    "log_chi2ndof",
    "log1p_match_chi2",
    "log_p_gev",
    "ndof_over_10",
    "velo_hits_over_10",
    "t_hits_over_10",
    "log_ntracks",
)
_FILE = "ghost_prob.json"


def ghost_features(found: FoundTracks, fit: FitResult) -> npt.NDArray[np.float64]:
    """The features (t, len(FEATURES)) of every track, unstandardised (NaN where undefined)."""
    n = len(found)
    n_tracks = np.bincount(found.event, minlength=int(found.event.max(initial=-1)) + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2ndof = fit.chi2 / np.maximum(fit.ndof, 1)
        p = 1e-3 / np.abs(fit.beam[:, 5])
        cols = [
            np.ones(n),
            np.log(np.maximum(chi2ndof, 1e-3)),
            np.log1p(found.match_chi2),
            np.log(p),
            fit.ndof / 10.0,
            found.n_velo / 10.0,
            found.n_t / 10.0,
            np.log(n_tracks[found.event].astype(np.float64)) if n else np.zeros(0),
        ]
    return np.column_stack(cols) if n else np.zeros((0, len(FEATURES)))


def fit_logistic(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.bool_], l2: float = 1e-3, iterations: int = 50
) -> npt.NDArray[np.float64]:
    """Weights w of P(y) = σ(x·w) by Newton–Raphson (IRLS) with an L2 penalty on all but the
    first column (the constant)."""
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2 * len(y))
    penalty[0] = 0.0
    for _ in range(iterations):
        prob = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (prob - y) + penalty * w
        hess = (x * (prob * (1.0 - prob))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


@dataclass(frozen=True)
class GhostModel:
    """Standardisation (mean, scale) and weights of the logistic regression, plus provenance."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    trained_on: str = ""

    def predict(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        z = (features - np.asarray(self.mean)) / np.asarray(self.scale)
        z[:, 0] = 1.0
        with np.errstate(over="ignore"):
            prob = 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights))))
        return np.where(np.all(np.isfinite(features), axis=1), prob, 1.0)

    def digest(self) -> str:
        text = json.dumps([self.mean, self.scale, self.weights])
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> str:
        body = {
            "features": list(FEATURES),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "trained_on": self.trained_on,
            "sha256": self.digest(),
        }
        return json.dumps(body, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = _FILE) -> GhostModel:
        try:
            body = json.loads(text)
            model = cls(
                tuple(body["mean"]),
                tuple(body["scale"]),
                tuple(body["weights"]),
                body["trained_on"],
            )
            names, digest = tuple(body["features"]), body["sha256"]
        except (KeyError, TypeError, ValueError) as err:
            msg = f"{source}: not a ghost-probability model ({err})"
            raise ConfigError(msg) from None
        if names != FEATURES:
            msg = f"{source}: features {names} differ from this version's {FEATURES}"
            raise ConfigError(msg)
        if digest != model.digest():
            msg = f"{source}: sha256 of the weights does not match the file's"
            raise ConfigError(msg)
        return model

    @classmethod
    def default(cls) -> GhostModel:
        """The packaged model (``ghost_prob.json``)."""
        text = resources.files("lamarr_col.detailed").joinpath(_FILE).read_text()
        return cls.from_json(text)

    @classmethod
    def train(
        cls, features: npt.NDArray[np.float64], ghost: npt.ArrayLike, note: str
    ) -> GhostModel:
        """Fit on finite rows of ``features`` (long tracks) with labels ``ghost``."""
        y = np.asarray(ghost, dtype=np.bool_)
        ok = np.all(np.isfinite(features), axis=1)
        x, y = features[ok], y[ok]
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        mean[0], scale[0] = 0.0, 1.0
        scale[scale == 0] = 1.0
        z = (x - mean) / scale
        w = fit_logistic(z, y)
        return cls(tuple(mean.tolist()), tuple(scale.tolist()), tuple(w.tolist()), note)


def ghost_probability(
    found: FoundTracks, fit: FitResult, model: GhostModel | None = None
) -> npt.NDArray[np.float64]:
    """Per track: the model's ghost probability for long tracks, 0 for the others."""
    out = np.zeros(len(found))
    long = found.track_type == TRACK_TYPES["LONG"]
    if long.any():
        out[long] = (model or GhostModel.default()).predict(ghost_features(found, fit)[long])
    return out


def roc_auc(score: npt.ArrayLike, label: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann–Whitney, ties counted half)."""
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(label, dtype=np.bool_)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    for value in np.unique(s[np.r_[False, np.diff(s[order]) == 0]]):  # average tied ranks
        tie = s == value
        ranks[tie] = ranks[tie].mean()
    n1, n0 = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)) if n1 and n0 else float("nan")


def _sample(n_events: int, seed: int, conditions_name: str) -> tuple[Any, Any]:
    from lamarr_col.detailed.simulate import run_tracking
    from lamarr_col.detector import load_conditions
    from lamarr_col.sources.beam import RUN3_PILEUP, PileUp
    from lamarr_col.sources.pythia import PythiaSource

    conditions = load_conditions(conditions_name)
    source = PythiaSource(preset="minbias", pileup=PileUp(nu=RUN3_PILEUP))
    feats, labels = [], []
    for batch in source.batches(n_events, 100, seed=seed):
        out = run_tracking(batch, conditions, seed=seed)
        long = out.found.track_type == TRACK_TYPES["LONG"]
        feats.append(ghost_features(out.found, out.fit)[long])
        labels.append(out.found.row[long] < 0)
    return np.concatenate(feats), np.concatenate(labels)


def main(argv: Sequence[str] | None = None) -> int:
    """Retrain the packaged model (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m lamarr_col.detailed.ghosts")
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--conditions", default="lhcb-run3")
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name(_FILE))
    args = parser.parse_args(argv)
    x, y = _sample(args.events, args.seed, args.conditions)
    half = np.arange(len(y)) % 2 == 0
    note = (
        f"{args.events} Pythia8 minimum-bias crossings, Run 3 pile-up, {args.conditions}, "
        f"seed {args.seed}: {len(y)} long tracks, {int(y.sum())} ghosts"
    )
    check = GhostModel.train(x[half], y[half], note)
    auc = roc_auc(check.predict(x[~half]), y[~half])
    model = GhostModel.train(x, y, note + f"; held-out ROC AUC {auc:.3f} (trained on one half)")
    args.output.write_text(model.to_json())
    print(f"{note}; held-out ROC AUC {auc:.3f}; wrote {args.output}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
