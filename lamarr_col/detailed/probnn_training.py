"""Retrain the ProbNN of a condition set (:mod:`.probnn`) on its own detailed simulation.

The sample: Pythia 8 minimum-bias crossings at the condition set's pile-up, each with
``--embed`` particles of a gun (μ⁻, μ⁺, e⁻, e⁺ in equal parts, 2–100 GeV, 2 < η < 5;
:mod:`.embedding`) added as one more collision, so that muons, rare in minimum bias, are
numerous enough to learn from. The crossings go through :func:`.simulate.run_tracking` and
:func:`.pid.run_pid` with the ProbNN step off (the network must not see its own output), in
batches of 100; every long, upstream and downstream track with a good fit and a true species
among e, μ, π, K, p, or no true particle (a ghost), is a row. Other species are left out.

Weights: the output must be the posterior for the natural mix, so the classes are *not*
balanced (a balanced loss learns equal priors and overstates the rare classes). The embedded
particles alone would inflate the electron and muon priors, so every electron (muon) row gets
the weight N_natural / N_all of its class in the training rows: the weighted class totals are
those of plain minimum bias, while the embedded rows still fill the momentum range that
minimum bias leaves empty. The crossings whose event number is 4 modulo 5 are held out; the
card's metrics are measured on them (weighted the same way), never seen by the fit or its
early stopping.

``python -m lamarr_col.detailed.probnn_training --conditions NAME --events N --seed S
[--embed K] [--store | --output DIR]`` trains and prints the metrics; ``--store`` writes the
model into the shipped weights (``weights/probnn-NAME/VERSION/`` and ``weights/registry.json``),
``--output DIR`` into the registry under DIR instead.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from lamarr_col.detailed.embedding import embed
from lamarr_col.detailed.probnn import (
    CLASSES,
    FEATURE_NAMES,
    FEATURES,
    OUTPUT_FIELDS,
    model_id,
    probnn_features,
    probnn_labels,
)
from lamarr_col.detector import load_conditions
from lamarr_col.detector.conditions import ConditionSet
from lamarr_col.errors import LamarrError
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.sources.gun import ParticleGun

__all__ = [
    "EMBEDDED_GUN",
    "ProbNNSample",
    "held_out_metrics",
    "main",
    "make_sample",
    "natural_weights",
]

#: the embedded gun (``--embed`` particles per crossing)
EMBEDDED_GUN = {"species": "mu-:1,mu+:1,e-:1,e+:1", "p": "flat:2000:100000"}
BATCH = 100
HELD_OUT_MODULO = 5  # crossings with event number % 5 == 4 are held out
_PROG = "python -m lamarr_col.detailed.probnn_training"


@dataclass(frozen=True)
class ProbNNSample:
    """The rows (n): features ``x`` (n, len(FEATURES)) float32, class ``y`` (n,) int64,
    ``embedded`` (the track's particle comes from the gun), ``event`` number, ``track_type``;
    ``n_events`` crossings made them."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    embedded: npt.NDArray[np.bool_]
    event: npt.NDArray[np.uint64]
    track_type: npt.NDArray[np.int8]
    n_events: int

    def __len__(self) -> int:
        return len(self.y)

    def select(self, mask: npt.NDArray[np.bool_]) -> ProbNNSample:
        return ProbNNSample(
            self.x[mask],
            self.y[mask],
            self.embedded[mask],
            self.event[mask],
            self.track_type[mask],
            self.n_events,
        )


def make_sample(
    conditions: ConditionSet, n_events: int, seed: int, n_embed: int, *, progress: bool = False
) -> ProbNNSample:
    """The rows of the module docstring from ``n_events`` crossings."""
    from lamarr_col.detailed.pid import run_pid
    from lamarr_col.detailed.simulate import run_tracking
    from lamarr_col.sources.pythia import PythiaSource

    source = PythiaSource(pileup=conditions.pileup)
    gun = None
    if n_embed:
        species, p = EMBEDDED_GUN["species"], EMBEDDED_GUN["p"]
        gun = ParticleGun.from_strings(species=species, p=p, multiplicity=str(n_embed))
    parts: list[tuple[npt.NDArray[Any], ...]] = []
    bar = tqdm(total=n_events, desc="crossings", unit="ev", disable=not progress)
    for batch in source.batches(n_events, BATCH, seed=seed):
        events = embed(batch, gun, seed=seed) if gun is not None else batch
        out = run_tracking(events, conditions, seed=seed)
        pid = run_pid(out, conditions, seed=seed, probnn=False)
        x = probnn_features(out, pid.fields, pid.n_tracks)
        y = probnn_labels(out)
        row = out.found.row
        collision = np.asarray(out.particles["collision"], dtype=np.int64)[np.maximum(row, 0)]
        gun_collision = ak.to_numpy(out.events["n_collisions"]).astype(np.int64) - 1
        from_gun = (row >= 0) & (collision == gun_collision[out.found.event]) & (gun is not None)
        numbers = ak.to_numpy(out.events["event"]).astype(np.uint64)[out.found.event]
        keep = np.all(np.isfinite(x), axis=1) & (y >= 0)
        parts.append((x[keep], y[keep], from_gun[keep], numbers[keep], out.found.track_type[keep]))
        bar.update(len(batch))
    bar.close()
    x, y, emb, ev, tt = (np.concatenate(c) for c in zip(*parts, strict=True))
    return ProbNNSample(x, y, emb, ev, tt, n_events)


def natural_weights(y: npt.NDArray[np.int64], embedded: npt.NDArray[np.bool_]) -> dict[int, float]:
    """Per class: the weight N_natural / N_all that restores the natural class total (1 for
    classes without embedded rows; a class with no natural row counts as one)."""
    out = {}
    for k in range(len(CLASSES)):
        n_all = int(np.sum(y == k))
        n_nat = int(np.sum((y == k) & ~embedded))
        out[k] = max(n_nat, 1) / n_all if n_all and n_nat < n_all else 1.0
    return out


def _auc(score: npt.NDArray[Any], positive: npt.NDArray[np.bool_]) -> float:
    from lamarr_col.nn.training import roc_auc

    return roc_auc(score, positive)


def held_out_metrics(
    proba: npt.NDArray[np.float32], sample: ProbNNSample, weights: npt.NDArray[np.float64]
) -> dict[str, Any]:
    """The card's metrics on the held-out rows: weighted (natural-mix) cross-entropy,
    accuracy, per-class one-vs-rest AUC and ECE and the max-probability ECE; the ECE on the
    natural rows alone; on long tracks, K and μ efficiencies and π misidentification at
    ProbNN > 0.5, ProbNNk against DLLK for K/π and ProbNNghost against ghost_prob."""
    from lamarr_col.nn.training import classification_metrics, expected_calibration_error

    y = sample.y
    m = classification_metrics(proba, y, weights)
    nat = ~sample.embedded
    correct = proba.argmax(axis=1) == y
    long = sample.track_type == TRACK_TYPES["LONG"]
    c = {name: CLASSES.index(name) for name in CLASSES}
    k_long, pi_long, mu_long = long & (y == c["k"]), long & (y == c["pi"]), long & (y == c["mu"])
    dllk = sample.x[:, FEATURE_NAMES.index("rich_dll_k")]
    ghost_prob = sample.x[:, FEATURE_NAMES.index("ghost_prob")]
    kpi = k_long | pi_long

    def frac(sel: npt.NDArray[np.bool_], k: int) -> float:
        return float(np.mean(proba[sel, k] > 0.5)) if sel.any() else float("nan")

    return {
        "rows": len(y),
        "rows_per_class": {n: int(np.sum(y == k)) for n, k in c.items()},
        "loss": m["loss"],
        "accuracy": m["accuracy"],
        "auc": dict(zip(CLASSES, m["auc"], strict=True)),
        "ece": m["ece"],
        "ece_per_class": dict(zip(CLASSES, m["ece_per_class"], strict=True)),
        "ece_natural_rows": expected_calibration_error(proba.max(axis=1)[nat], correct[nat]),
        "long_k_efficiency_probnnk_gt_0.5": frac(k_long, c["k"]),
        "long_pi_misid_probnnk_gt_0.5": frac(pi_long, c["k"]),
        "long_mu_efficiency_probnnmu_gt_0.5": frac(mu_long, c["mu"]),
        "long_pi_misid_probnnmu_gt_0.5": frac(pi_long, c["mu"]),
        "long_auc_k_vs_pi_probnnk": _auc(proba[kpi, c["k"]], k_long[kpi]),
        "long_auc_k_vs_pi_dllk": _auc(dllk[kpi], k_long[kpi]),
        "long_auc_ghost_probnnghost": _auc(proba[long, c["ghost"]], (y == c["ghost"])[long]),
        "long_auc_ghost_ghost_prob": _auc(ghost_prob[long], (y == c["ghost"])[long]),
    }


def _card(
    args: argparse.Namespace,
    argv: Sequence[str],
    conditions: ConditionSet,
    train: ProbNNSample,
    factors: dict[int, float],
    trained: Any,
    metrics: dict[str, Any],
) -> dict[str, Any]:
    n_rows = {n: int(np.sum(train.y == k)) for k, n in enumerate(CLASSES)}
    n_embedded = {n: int(np.sum((train.y == k) & train.embedded)) for k, n in enumerate(CLASSES)}
    return {
        "model_id": model_id(args.conditions),
        "version": args.version,
        "description": "ProbNN of the detailed simulation: e/μ/π/K/p/ghost probabilities for the "
        "natural mix of minimum-bias tracks (long, upstream, downstream)",
        "inputs": [{"name": f.name, "unit": f.unit, "doc": f.doc} for f in FEATURES],
        "outputs": list(OUTPUT_FIELDS),
        "training": {
            "sample": (
                f"{args.events} Pythia 8 minimum-bias crossings of {args.conditions} (pile-up ν = "
                f"{conditions.pileup.nu}), {args.embed} gun particles "
                f"embedded per crossing ({EMBEDDED_GUN['species']}, p {EMBEDDED_GUN['p']} MeV, "
                "2 < η < 5); detailed simulation with the ProbNN off; long, upstream and "
                "downstream tracks with a good fit; crossings with event % 5 == 4 held out"
            ),
            "command": shlex.join([*_PROG.split(), *argv]),
            "seed": args.seed,
            "rows": len(train),
            "rows_per_class": n_rows,
            "embedded_rows_per_class": n_embedded,
            "class_weight": None,
            "row_weights": {CLASSES[k]: round(v, 6) for k, v in factors.items()},
            "row_weights_doc": "e and μ rows weighted by N_natural / N_all of their class",
            "epochs": trained.metrics["epochs"],
            "best_epoch": trained.metrics["best_epoch"],
        },
        "metrics": {
            "held_out": metrics,
            "early_stopping_validation": {
                k: trained.metrics[k] for k in ("loss", "accuracy", "ece", "rows_validation")
            },
        },
    }


def _report(metrics: dict[str, Any]) -> str:
    auc = ", ".join(f"{k} {v:.3f}" for k, v in metrics["auc"].items())
    ece = ", ".join(f"{k} {v:.4f}" for k, v in metrics["ece_per_class"].items())
    extra = "\n".join(
        f"  {k}: {v:.4f}" for k, v in metrics.items() if k.startswith("long_") or k == "accuracy"
    )
    return (
        f"held-out rows {metrics['rows']} {metrics['rows_per_class']}\n"
        f"  AUC (one vs rest): {auc}\n  ECE: max-probability {metrics['ece']:.4f} "
        f"(natural rows {metrics['ece_natural_rows']:.4f}); per class {ece}\n{extra}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Train, print the metrics and store the model where asked (module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=_PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--conditions", default="lhcb-run3", help="condition set name")
    parser.add_argument("--events", type=int, default=300, help="Pythia crossings")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--embed", type=int, default=2, help="gun particles per crossing")
    parser.add_argument("--version", default="v2", help="model version to write")
    parser.add_argument("--epochs", type=int, default=100, help="maximum training epochs")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", action="store_true", help="write into the shipped weights")
    where.add_argument("--output", type=Path, help="write into the registry under this folder")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        return _run(args, argv)
    except LamarrError as err:
        print(f"{_PROG}: error: {err}", file=sys.stderr)  # noqa: T201
        return 2


def _run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import jax

    from lamarr_col.nn.classifier import predict_proba
    from lamarr_col.nn.training import train_classifier
    from lamarr_col.nn.weights import register, save_classifier

    conditions = load_conditions(args.conditions)
    sample = make_sample(
        conditions, args.events, args.seed, args.embed, progress=not args.no_progress
    )
    held = (sample.event % HELD_OUT_MODULO) == HELD_OUT_MODULO - 1
    train, test = sample.select(~held), sample.select(held)
    factors = natural_weights(train.y, train.embedded)
    weight_of = np.array([factors[k] for k in range(len(CLASSES))])
    trained = train_classifier(
        train.x,
        train.y,
        sample_weight=weight_of[train.y],
        n_classes=len(CLASSES),
        key=jax.random.key(args.seed),
        width=64,
        depth=2,
        max_epochs=args.epochs,
        passthrough=[f.flag for f in FEATURES],
        progress=not args.no_progress,
        class_weight=None,
    )
    proba = predict_proba(trained.classifier, test.x)
    metrics = held_out_metrics(proba, test, weight_of[test.y])
    print(f"{model_id(args.conditions)}: {len(train)} training rows from {args.events} crossings")  # noqa: T201
    print(_report(metrics))  # noqa: T201
    root = Path(str(resources.files("lamarr_col.weights"))) if args.store else args.output
    if root is not None:
        card = _card(args, argv, conditions, train, factors, trained, metrics)
        folder = save_classifier(
            root / model_id(args.conditions) / args.version, trained.classifier, card
        )
        register(root, model_id(args.conditions), args.version)
        print(f"stored in {folder}, registered in {root / 'registry.json'}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
