"""ProbNN of the detailed simulation: one softmax classifier e/μ/π/K/p/ghost per condition set.

Every long, upstream and downstream track gets six probabilities, ``probnn_e``, ``probnn_mu``,
``probnn_pi``, ``probnn_k``, ``probnn_p`` and ``probnn_ghost`` (summing to one), from a residual
MLP (:mod:`lamarr_col.nn`) on the track's kinematics, fit quality, ghost probability, the
event's occupancy and the RICH and muon-system outputs of :func:`.pid.run_pid` (``FEATURES``:
names, units and meaning, in the network's input order). Like LHCb's ProbNN they are
probabilities for the natural mix of species of minimum-bias crossings at the condition set's
pile-up, the sample the network learnt from (:mod:`.probnn_training`).

The model of a condition set is the registered model ``probnn-<conditions name>`` of the
shipped weights (``weights/registry.json``, :func:`lamarr_col.nn.weights.load_registered`: the
sha256 and tensor names are checked on loading). Where none is registered (a user's own
condition set before its retrain) all six fields are NaN; VELO and T tracks, and tracks whose
fit failed, get NaN too. A registered model that cannot be read, or whose inputs or outputs
differ from this version's, raises :class:`~lamarr_col.errors.InputError` /
:class:`~lamarr_col.errors.ConfigError` naming the model and the file.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.fit import reference_states
from lamarr_col.errors import ConfigError, InputError
from lamarr_col.kernels.acceptance import TRACK_TYPES

if TYPE_CHECKING:
    from lamarr_col.detailed.simulate import TrackingOutput
    from lamarr_col.nn.classifier import Classifier

__all__ = [
    "CLASSES",
    "D2_NO_HIT",
    "FEATURES",
    "FEATURE_NAMES",
    "IDENTIFIED_TYPES",
    "OUTPUT_FIELDS",
    "Feature",
    "evaluate_probnn",
    "load_probnn",
    "model_id",
    "probnn_features",
    "probnn_labels",
]

#: the classes, in the order of the network's outputs
CLASSES = ("e", "mu", "pi", "k", "p", "ghost")
OUTPUT_FIELDS = tuple(f"probnn_{c}" for c in CLASSES)
#: |PDG id| of the true particle → class index; a track without a particle is a ghost
SPECIES = {11: 0, 13: 1, 211: 2, 321: 3, 2212: 4}
GHOST = CLASSES.index("ghost")
#: the track types that get a ProbNN (those with a momentum and PID information)
IDENTIFIED_TYPES = (TRACK_TYPES["LONG"], TRACK_TYPES["UPSTREAM"], TRACK_TYPES["DOWNSTREAM"])
#: D² of a track without a muon hit in its FOIs (NaN in ``muon_d2``): beyond any real value
D2_NO_HIT = 1000.0


@dataclass(frozen=True)
class Feature:
    """One network input: ``name``, ``unit``, ``doc``; ``flag`` inputs (0/1) are passed to the
    network as they are, the others through the quantile-to-normal preprocessing."""

    name: str
    unit: str
    doc: str
    flag: bool = False


_HYP = {"e": "electron", "mu": "muon", "pi": "pion", "k": "kaon", "p": "proton"}

FEATURES: tuple[Feature, ...] = (
    Feature("log_p", "ln(MeV)", "ln(p / MeV), p at the reference state"),
    Feature("log_pt", "ln(MeV)", "ln(pT / MeV), pT at the reference state"),
    Feature("eta", "", "pseudorapidity of the reference-state direction"),
    Feature("is_long", "", "long track", flag=True),
    Feature("is_upstream", "", "upstream track", flag=True),
    Feature("is_downstream", "", "downstream track", flag=True),
    Feature("chi2ndof", "", "χ²/ndof of the track fit"),
    Feature("ghost_prob", "", "ghost probability (lamarr_col.detailed.ghosts; 0 if not long)"),
    Feature("n_tracks", "", "reconstructed tracks of the event (occupancy)"),
    Feature("rich_used_r1", "", "RICH1 information", flag=True),
    Feature("rich_used_r2", "", "RICH2 information", flag=True),
    *(
        Feature(
            f"rich_above_{h}_threshold",
            "",
            f"{name} above a crossed radiator's threshold",
            flag=True,
        )
        for h, name in _HYP.items()
    ),
    *(
        Feature(f"rich_dll_{h}", "", f"RICH Δ log-likelihood {name} − pion (0: no information)")
        for h, name in _HYP.items()
        if h != "pi"
    ),
    Feature("is_muon", "", "isMuon", flag=True),
    Feature("in_muon_acceptance", "", "extrapolation inside M2 and M3", flag=True),
    Feature("muon_n_stations", "", "stations of M2–M5 with a hit in the FOI"),
    Feature(
        "muon_d2", "", f"mean squared hit distance in extrapolation errors ({D2_NO_HIT:g}: none)"
    ),
    Feature("muon_mu_ll", "", "muon log-likelihood of the muon stations (0 without isMuon)"),
    Feature("muon_bg_ll", "", "non-muon log-likelihood of the muon stations (0 without isMuon)"),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
#: the PID fields of :func:`.pid.run_pid` copied into the features as they are
_COPIED = tuple(n for n in FEATURE_NAMES if n.startswith(("rich_", "is_muon", "in_muon", "muon_")))


def model_id(conditions_name: str) -> str:
    """The registry id of a condition set's model."""
    return f"probnn-{conditions_name}"


def probnn_features(
    out: TrackingOutput,
    fields: Mapping[str, npt.NDArray[Any]],
    n_tracks: npt.NDArray[np.integer],
) -> npt.NDArray[np.float32]:
    """The features (t, len(FEATURES)) float32 of every found track of ``out``, in the order of
    ``FEATURES``; ``fields`` the PID fields and ``n_tracks`` (events,) the occupancy of
    :func:`.pid.run_pid`. Rows of tracks without a ProbNN (VELO, T, failed fit) are NaN."""
    found, fit = out.found, out.fit
    n = len(found)
    state = reference_states(found.track_type, fit)[0]
    tx, ty, qop = state[:, 3], state[:, 4], state[:, 5]
    slope = np.hypot(tx, ty)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 1.0 / np.abs(qop)
        pt = p * slope / np.sqrt(1.0 + slope * slope)
        cols: dict[str, npt.NDArray[np.float64]] = {
            "log_p": np.log(p),
            "log_pt": np.log(pt),
            "eta": np.arcsinh(1.0 / slope),
            "chi2ndof": fit.chi2 / np.maximum(fit.ndof, 1),
        }
    for name in ("LONG", "UPSTREAM", "DOWNSTREAM"):
        cols[f"is_{name.lower()}"] = (found.track_type == TRACK_TYPES[name]).astype(np.float64)
    cols["ghost_prob"] = out.ghost_prob
    cols["n_tracks"] = np.asarray(n_tracks, dtype=np.float64)[found.event]
    for name in _COPIED:
        cols[name] = np.asarray(fields[name], dtype=np.float64)
    cols["muon_d2"] = np.where(np.isnan(cols["muon_d2"]), D2_NO_HIT, cols["muon_d2"])
    x = np.column_stack([cols[f] for f in FEATURE_NAMES]) if n else np.zeros((0, len(FEATURES)))
    good = np.isin(found.track_type, IDENTIFIED_TYPES) & fit.ok
    x[~good] = np.nan
    return np.ascontiguousarray(x, dtype=np.float32)


def probnn_labels(out: TrackingOutput) -> npt.NDArray[np.int64]:
    """The true class (index in ``CLASSES``) of every found track: ghost where it has no MC
    particle, −1 for species outside the classes (hyperons, deuterons …)."""
    row = out.found.row
    pid = np.abs(np.asarray(out.particles["pid"], dtype=np.int64))[np.maximum(row, 0)]
    label = np.full(len(row), -1, dtype=np.int64)
    for species, k in SPECIES.items():
        label[pid == species] = k
    label[row < 0] = GHOST
    return label


def _weights_root(root: str | Path | None) -> Path:
    return Path(str(resources.files("lamarr_col.weights"))) if root is None else Path(root)


@functools.lru_cache(maxsize=16)
def _load(root: Path, model: str, version: str | None) -> tuple[Classifier, dict[str, Any]] | None:
    from lamarr_col.nn.weights import load_registered, read_registry

    entry = read_registry(root)["models"].get(model)
    if entry is None:
        return None
    try:
        classifier, card = load_registered(model, version, root=root)
    except (InputError, ConfigError) as err:
        msg = f"ProbNN model {model!r}: {err}"
        raise type(err)(msg) from err
    where = root / entry["versions"][version or entry["default"]]["path"] / "model.json"
    inputs = tuple(i.get("name") if isinstance(i, dict) else i for i in card.get("inputs", ()))
    outputs = tuple(card.get("outputs", ()))
    if inputs != FEATURE_NAMES or outputs != OUTPUT_FIELDS:
        msg = (
            f"ProbNN model {model!r} ({where}): inputs {list(inputs)} and outputs "
            f"{list(outputs)} differ from this version's {list(FEATURE_NAMES)} and "
            f"{list(OUTPUT_FIELDS)}; retrain it (python -m lamarr_col.detailed.probnn_training)"
        )
        raise ConfigError(msg)
    return classifier, card


def load_probnn(
    conditions_name: str, *, root: str | Path | None = None, version: str | None = None
) -> tuple[Classifier, dict[str, Any]] | None:
    """The classifier and card of ``probnn-<conditions_name>`` in the registry under ``root``
    (default: the shipped weights), its default version unless ``version`` is given; None if
    no such model is registered. Loaded once per (root, model, version)."""
    return _load(_weights_root(root).resolve(), model_id(conditions_name), version)


def evaluate_probnn(
    features: npt.NDArray[np.floating],
    conditions_name: str,
    *,
    root: str | Path | None = None,
) -> dict[str, npt.NDArray[np.float32]]:
    """The six ``OUTPUT_FIELDS`` (t,) float32 for the rows of ``features`` (t, len(FEATURES)):
    the condition set's model where a row is finite, NaN elsewhere and everywhere when the
    condition set has no registered model."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != len(FEATURES):
        msg = f"evaluate_probnn: features must be (tracks, {len(FEATURES)}), got {x.shape}"
        raise InputError(msg)
    proba = np.full((len(x), len(CLASSES)), np.nan, dtype=np.float32)
    loaded = load_probnn(conditions_name, root=root)
    good = np.all(np.isfinite(x), axis=1)
    if loaded is not None and good.any():
        from lamarr_col.nn.classifier import predict_proba

        proba[good] = predict_proba(loaded[0], x[good])
    return {name: np.ascontiguousarray(proba[:, k]) for k, name in enumerate(OUTPUT_FIELDS)}
