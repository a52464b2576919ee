"""What each flash model learns: its rows, inputs, targets or classes, from the training tables.

The detailed simulation's training tables (``lamarr-col tables``, one row per charged MC
particle, columns in docs/detailed.md) hold everything the charged-particle models need. A
:class:`ModelSpec` says, for one model, which rows it trains on, how its inputs are computed
from the columns (with units and the flags the quantile preprocessing passes through), and
its targets (generators) or classes (classifiers). :data:`SPECS` holds the shipped models'
specs by name; ``lamarr-col train NAME`` uses them.

Inputs (generator level, as the flash pipeline has them; MeV, mm):

- tracking models: origin ``vx vy vz``; ``log_p`` (ln of p/MeV); slopes ``tx = px/pz``,
  ``ty = py/pz``; ``eta``, ``phi``; ``charge``; the species one-hot ``is_e is_mu is_pi is_k
  is_p`` (others: all zero). One model for all species: the species is an input.
- PID models, conditioned on the *reconstructed* kinematics of the track (``log_p_rec`` from
  q/p, ``eta_rec`` from the slopes) and the event's own occupancy ``n_tracks``, plus charge
  and species, and the track-type one-hot ``is_long is_upstream is_downstream``. Each PID step
  also sees the outputs of the steps before it (RICH → MUON → global PID), which at run time
  come from the upstream models.

Rows: generator particles (``origin`` 0, the flash's inputs) with p ≥ 1 GeV; the tracking
classifier takes them all, the models of reconstructed tracks the long, upstream and
downstream ones, each PID model the tracks its detector identifies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from lamarr_col.errors import ConfigError, InputError

__all__ = ["PROBNN", "PROBNN_RATIOS", "SPECS", "TRACKING_CLASSES", "Feature", "ModelSpec", "spec"]

_Columns = Mapping[str, npt.NDArray[np.generic]]
_F = npt.NDArray[np.float64]

#: classes of the tracking classifier (acceptance and efficiency in one softmax)
TRACKING_CLASSES = ("out_of_acceptance", "not_reconstructed", "long", "upstream", "downstream")
_TYPE = {"LONG": 3, "UPSTREAM": 4, "DOWNSTREAM": 5}
_SPECIES = {"e": 11, "mu": 13, "pi": 211, "k": 321, "p": 2212}


@dataclass(frozen=True)
class Feature:
    """One input or target column: its name, unit, meaning, how it is computed from the
    table's columns, and whether the quantile preprocessing passes it through (flags)."""

    name: str
    unit: str
    doc: str
    compute: Callable[[_Columns], _F]
    flag: bool = False

    def card(self) -> dict[str, str]:
        return {"name": self.name, "unit": self.unit, "doc": self.doc}


def _col(name: str) -> Callable[[_Columns], _F]:
    return lambda c: np.asarray(c[name], dtype=np.float64)


def _is_species(pdg: int) -> Callable[[_Columns], _F]:
    return lambda c: (np.abs(np.asarray(c["pid"])) == pdg).astype(np.float64)


def _is_type(code: int) -> Callable[[_Columns], _F]:
    return lambda c: (np.asarray(c["track_type"]) == code).astype(np.float64)


def _p_rec(c: _Columns) -> _F:
    with np.errstate(divide="ignore"):
        return 1.0 / np.abs(np.asarray(c["qop"], dtype=np.float64))


def _eta_rec(c: _Columns) -> _F:
    slope = np.hypot(np.asarray(c["tx"], dtype=np.float64), np.asarray(c["ty"], dtype=np.float64))
    with np.errstate(divide="ignore"):
        return np.arcsinh(1.0 / slope)


def _ratio(a: str, b: str) -> Callable[[_Columns], _F]:
    def value(c: _Columns) -> _F:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(c[a], dtype=np.float64) / np.asarray(c[b], dtype=np.float64)

    return value


SPECIES_FEATURES = tuple(
    Feature(
        f"is_{s}",
        "",
        f"the particle is a{'n' if s == 'e' else ''} {s} (either charge)",
        _is_species(pdg),
        flag=True,
    )
    for s, pdg in _SPECIES.items()
)
GENERATOR_FEATURES = (
    Feature("vx", "mm", "origin x", _col("vx")),
    Feature("vy", "mm", "origin y", _col("vy")),
    Feature("vz", "mm", "origin z", _col("vz")),
    Feature("log_p", "ln MeV", "ln of the generated momentum", lambda c: np.log(_col("p")(c))),
    Feature("tx", "", "generated slope px/pz", _ratio("px", "pz")),
    Feature("ty", "", "generated slope py/pz", _ratio("py", "pz")),
    Feature("eta", "", "generated pseudorapidity", _col("eta")),
    Feature("phi", "rad", "generated azimuth", _col("phi")),
    Feature("charge", "e", "charge", _col("charge"), flag=True),
    *SPECIES_FEATURES,
)
TRACK_TYPE_FEATURES = tuple(
    Feature(
        f"is_{t.lower()}",
        "",
        f"the track is a{'n' if t == 'UPSTREAM' else ''} {t.lower()} track",
        _is_type(code),
        flag=True,
    )
    for t, code in _TYPE.items()
)
RECO_FEATURES = (
    Feature(
        "log_p_rec",
        "ln MeV",
        "ln of the reconstructed momentum (1/|q/p|)",
        lambda c: np.log(_p_rec(c)),
    ),
    Feature("eta_rec", "", "pseudorapidity of the reconstructed slopes", _eta_rec),
    Feature("n_tracks", "", "reconstructed tracks of the event (occupancy)", _col("n_tracks")),
    Feature("charge", "e", "charge", _col("charge"), flag=True),
    *SPECIES_FEATURES,
    *TRACK_TYPE_FEATURES,
)


def _targets(*names: tuple[str, str, str]) -> tuple[Feature, ...]:
    return tuple(Feature(n, u, d, _col(n)) for n, u, d in names)


@dataclass(frozen=True)
class ModelSpec:
    """One model: ``kind`` ``classifier`` (``classes``, labels from ``label``) or
    ``generator`` (``targets``); its ``inputs``; the rows it trains on (``select``)."""

    name: str
    kind: str
    doc: str
    inputs: tuple[Feature, ...]
    select: Callable[[_Columns], npt.NDArray[np.bool_]]
    targets: tuple[Feature, ...] = ()
    classes: tuple[str, ...] = ()
    label: Callable[[_Columns], npt.NDArray[np.int64]] | None = None
    #: pairs (i, j) of targets whose difference y_i − y_j the GAN discriminator also sees
    auxiliary: tuple[tuple[int, int], ...] = field(default=())

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    @property
    def passthrough(self) -> list[bool]:
        return [f.flag for f in self.inputs]

    def categories(self, x: npt.ArrayLike) -> dict[str, npt.NDArray[np.bool_]]:
        """Masks of the rows of inputs ``x`` (n, inputs) by species and by track type (the
        one-hot flags among the inputs), named like the flags (``is_e``, ``is_long``)."""
        x = np.asarray(x)
        names = self.input_names
        return {
            f.name: x[:, names.index(f.name)] > 0.5
            for f in (*SPECIES_FEATURES, *TRACK_TYPE_FEATURES)
            if f.name in names
        }

    def rows(self, columns: _Columns, where: str = "table") -> dict[str, np.ndarray]:
        """The spec's rows of a table: ``x`` (n, inputs) float32 and ``y`` (targets, float32)
        or ``labels`` (int), only the rows selected and with finite values (the others are
        counted in ``dropped``), and ``index`` (n,), their rows in the table. Raises
        :class:`InputError` naming a missing column."""
        missing = sorted(_needed(self) - set(columns))
        if missing:
            msg = f"{where}: the {self.name} model needs the column(s) {', '.join(missing)}"
            raise InputError(msg)
        index, sub, x = self.selected_inputs(columns)
        out: dict[str, np.ndarray] = {}
        if self.kind == "classifier":
            assert self.label is not None
            labels = np.asarray(self.label(sub), dtype=np.int64)
            finite = np.isfinite(x).all(axis=1)
            out["labels"] = labels[finite]
        else:
            y = (
                np.column_stack([f.compute(sub) for f in self.targets])
                if len(index)
                else (np.zeros((0, len(self.targets))))
            )
            finite = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
            out["y"] = y[finite].astype(np.float32)
        out["x"] = x[finite].astype(np.float32)
        out["index"] = index[finite]
        out["dropped"] = np.asarray(int((~finite).sum()))
        return out

    def selected_inputs(
        self, columns: _Columns
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """(table rows the spec selects, their columns, their inputs (n, inputs) float64,
        non-finite values included)."""
        sel = np.asarray(self.select(columns), dtype=bool)
        sub = {k: np.asarray(v)[sel] for k, v in columns.items()}
        with np.errstate(all="ignore"):
            x = (
                np.column_stack([f.compute(sub) for f in self.inputs])
                if sel.any()
                else np.zeros((0, len(self.inputs)))
            )
        return np.flatnonzero(sel), sub, x


def _needed(s: ModelSpec) -> set[str]:
    """The table columns a spec reads (found by running it on a probing mapping)."""
    seen: set[str] = set()

    class Probe(dict):  # records every key read
        def __getitem__(self, key: str) -> np.ndarray:
            seen.add(key)
            return np.ones(1)

        def __contains__(self, key: object) -> bool:
            return True

    probe = Probe()
    with np.errstate(all="ignore"):
        s.select(probe)
        for f in (*s.inputs, *s.targets):
            f.compute(probe)
        if s.label is not None:
            s.label(probe)
    return seen


def _generated(c: _Columns) -> npt.NDArray[np.bool_]:
    return (np.asarray(c["origin"]) == 0) & (np.asarray(c["p"], dtype=np.float64) >= 1000.0)


def _reconstructed(c: _Columns) -> npt.NDArray[np.bool_]:
    return _generated(c) & np.isin(np.asarray(c["track_type"]), list(_TYPE.values()))


_STATE = ("x", "y", "tx", "ty", "qop")


def _cov_params(c: _Columns) -> _F:
    """The 15 Cholesky parameters of each row's reference-state covariance, in units of
    :func:`lamarr_col.nn.covariance.track_state_scale` (rows that are not positive-definite
    or not finite: NaN, dropped by :meth:`ModelSpec.rows`)."""
    from lamarr_col.nn.covariance import to_cholesky_params, track_state_scale

    qop = np.asarray(c["qop"], dtype=np.float64)
    n = len(qop)
    cov = np.empty((n, 5, 5))
    for i, a in enumerate(_STATE):
        for j in range(i, 5):
            v = np.asarray(c[f"cov_{a}_{_STATE[j]}"], dtype=np.float64)
            cov[:, i, j] = cov[:, j, i] = v
    out = np.full((n, 15), np.nan)
    scale = track_state_scale(np.where(np.isfinite(qop) & (qop != 0), qop, 1.0))
    good = np.isfinite(cov).all(axis=(1, 2)) & np.isfinite(qop) & (qop != 0)
    with np.errstate(all="ignore"):
        eig = np.full((n, 5), -1.0)
        if good.any():
            eig[good] = np.linalg.eigvalsh(cov[good])
    good &= (eig > 0).all(axis=1)
    if good.any():
        out[good] = to_cholesky_params(cov[good], scale=scale[good])
    return out


def _cov_target(i: int) -> Callable[[_Columns], _F]:
    return lambda c: _cov_params(c)[:, i]


#: typical Δp/p of each track type (the spread of long pions; downstream tracks lack the VELO,
#: upstream ones the T stations: their momentum comes from the UT's fringe field); the
#: resolution model generates Δp/p in these units so one quantile map fits all three
DP_SCALE = {"LONG": 0.005, "UPSTREAM": 0.3, "DOWNSTREAM": 0.01}


def dp_scale(track_type: npt.ArrayLike) -> _F:
    """The Δp/p unit of each track-type code (:data:`DP_SCALE`; NaN for other types)."""
    tt = np.asarray(track_type)
    out = np.full(tt.shape, np.nan)
    for name, scale in DP_SCALE.items():
        out[tt == _TYPE[name]] = scale
    return out


def _dp_scaled(c: _Columns) -> _F:
    return np.asarray(c["dp_over_p"], dtype=np.float64) / dp_scale(c["track_type"])


def _flag(c: _Columns, name: str) -> npt.NDArray[np.bool_]:
    return np.asarray(c[name]).astype(bool)


def _tracking_label(c: _Columns) -> npt.NDArray[np.int64]:
    acc = np.asarray(c["acceptance_type"])
    tt = np.asarray(c["track_type"])
    label = np.where(acc == 0, 0, 1)
    for i, t in enumerate(("LONG", "UPSTREAM", "DOWNSTREAM"), start=2):
        label = np.where(tt == _TYPE[t], i, label)
    return label.astype(np.int64)


_DLL = ("e", "mu", "k", "p")
_RICH_DLLS = _targets(*((f"rich_dll_{h}", "", f"RICH Δ log-likelihood {h} − π") for h in _DLL))


def _has_rich(c: _Columns) -> _F:
    return (_flag(c, "rich_used_r1") | _flag(c, "rich_used_r2")).astype(np.float64)


_RICH_TARGETS = (
    Feature(
        "has_rich", "", "1 if RICH1 or RICH2 gave information, else 0 (DLLs then 0)", _has_rich
    ),
    *_RICH_DLLS,
)


def _ecal_dll_e(c: _Columns) -> _F:
    return np.asarray(c["pid_e"], dtype=np.float64) - np.asarray(c["rich_dll_e"], dtype=np.float64)


#: the ProbNN hypotheses, and those generated as log-ratios to π
PROBNN = ("e", "mu", "pi", "k", "p", "ghost")
PROBNN_RATIOS = tuple(h for h in PROBNN if h != "pi")


def _probnn_log_ratio(h: str) -> Callable[[_Columns], _F]:
    def ratio(c: _Columns) -> _F:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(
                np.asarray(c[f"probnn_{h}"], np.float64) / np.asarray(c["probnn_pi"], np.float64)
            )

    return ratio


_MUON_TARGETS = _targets(
    ("muon_mu_ll", "", "muon log-likelihood of the muon stations"),
    ("muon_bg_ll", "", "non-muon log-likelihood of the muon stations"),
)
_PID_TARGETS = (
    Feature(
        "ecal_dll_e",
        "",
        "the calorimeter's electron Δ log-likelihood (E/p), PIDe − RichDLLe; 0 without a "
        "matched cluster",
        _ecal_dll_e,
    ),
    *(
        Feature(
            f"probnn_logratio_{h}",
            "",
            f"ln(ProbNN {h} / ProbNN π): the six ProbNN are the softmax of these and 0 for π "
            "(lamarr_col.nn.chain.globalpid_fields), so they lie in (0, 1) and sum to one",
            _probnn_log_ratio(h),
        )
        for h in PROBNN_RATIOS
    ),
)

SPECS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            "tracking",
            "classifier",
            "acceptance and reconstruction in one softmax: out of acceptance, not "
            "reconstructed, long, upstream, downstream",
            GENERATOR_FEATURES,
            _generated,
            classes=TRACKING_CLASSES,
            label=_tracking_label,
        ),
        ModelSpec(
            "resolution",
            "generator",
            "reconstructed − true state at the reference state, fit quality and ghost "
            "probability of reconstructed tracks",
            (*GENERATOR_FEATURES, *TRACK_TYPE_FEATURES),
            _reconstructed,
            targets=(
                *_targets(
                    ("dx", "mm", "x residual"),
                    ("dy", "mm", "y residual"),
                    ("dtx", "", "tx residual"),
                    ("dty", "", "ty residual"),
                    ("chi2ndof", "", "track fit χ²/ndof"),
                    ("ghost_prob", "", "ghost probability"),
                ),
                Feature(
                    "dp_over_p_scaled",
                    "",
                    "(p_rec − p_true)/p_true in units of dp_scale(track type)",
                    _dp_scaled,
                ),
            ),
        ),
        ModelSpec(
            "covariance",
            "generator",
            "covariance of the reference state (x, y, tx, ty, q/p) as 15 Cholesky parameters "
            "(lamarr_col.nn.covariance: log of the diagonal, then the entries below it, in "
            "units of track_state_scale(q/p)); positive-definite by construction",
            (*GENERATOR_FEATURES, *TRACK_TYPE_FEATURES),
            _reconstructed,
            targets=tuple(
                Feature(
                    f"chol_{k}",
                    "",
                    f"Cholesky parameter {k} of the scaled covariance",
                    _cov_target(k),
                )
                for k in range(15)
            ),
        ),
        ModelSpec(
            "ismuon",
            "classifier",
            "isMuon of long and downstream tracks",
            RECO_FEATURES,
            lambda c: _reconstructed(c) & np.isin(np.asarray(c["track_type"]), [3, 5]),
            classes=("not_muon", "is_muon"),
            label=lambda c: np.asarray(c["is_muon"]).astype(np.int64),
        ),
        ModelSpec(
            "rich",
            "generator",
            "whether the RICHes see the track and its RICH DLLs (0 without information, or "
            "below every threshold that separates the two hypotheses)",
            RECO_FEATURES,
            _reconstructed,
            targets=_RICH_TARGETS,
            auxiliary=((3, 1), (4, 3), (2, 1)),  # DLLK − DLLe, DLLp − DLLK, DLLmu − DLLe
        ),
        ModelSpec(
            "muon",
            "generator",
            "muon-station log-likelihoods of isMuon tracks",
            RECO_FEATURES,
            lambda c: _reconstructed(c) & _flag(c, "is_muon"),
            targets=_MUON_TARGETS,
            auxiliary=((0, 1),),  # muLL − bgLL
        ),
        ModelSpec(
            "globalpid",
            "generator",
            "what the combined PID adds to the RICH and muon outputs: the calorimeter's "
            "electron DLL and the ProbNN probabilities (as log-ratios to ProbNN π), "
            "conditioned on the track, its fit "
            "quality, the RICH and muon outputs and isMuon (the combined DLLs are sums: "
            "lamarr_col.nn.chain.combine_pid)",
            (
                *RECO_FEATURES,
                Feature("chi2ndof", "", "track fit χ²/ndof", _col("chi2ndof")),
                Feature("ghost_prob", "", "ghost probability", _col("ghost_prob")),
                Feature("has_rich", "", "the RICHes gave information", _has_rich, flag=True),
                *(Feature(t.name, t.unit, t.doc, t.compute) for t in _RICH_DLLS),
                *(Feature(t.name, t.unit, t.doc, t.compute) for t in _MUON_TARGETS),
                Feature("is_muon", "", "isMuon", _col("is_muon"), flag=True),
            ),
            _reconstructed,
            targets=_PID_TARGETS,
            auxiliary=((3, 1), (4, 3), (2, 1)),  # ln ProbNN ratios K/e, p/K, μ/e
        ),
    )
}


def spec(name: str) -> ModelSpec:
    """The spec of a shipped model by name; :class:`ConfigError` with the names otherwise."""
    if name not in SPECS:
        import difflib

        close = difflib.get_close_matches(name, list(SPECS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        msg = f"unknown model {name!r}; known: {', '.join(SPECS)}{hint}"
        raise ConfigError(msg)
    return SPECS[name]
