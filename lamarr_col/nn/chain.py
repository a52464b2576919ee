"""The charged PID chain: upstream models' outputs in place of the detailed simulation's.

The flash evaluates its charged models in order (:data:`CHAIN`): the resolution model makes the
reconstructed state, fit quality and ghost probability; isMuon, RICH and MUON are conditioned
on that reconstructed track; the global PID on all of them. :func:`flash_columns` rewrites a
training table so that the columns an upstream model makes hold that model's draws instead of
the detailed simulation's values, row by row from the row's own generator-level inputs:

- ``resolution``: ``dx dy dtx dty dp_over_p chi2ndof ghost_prob``, and from them the
  reconstructed ``qop``, ``tx``, ``ty`` (p_rec = p (1 + Δp/p), q/p = charge / p_rec);
- ``ismuon``: ``is_muon``, a Bernoulli draw with the classifier's probability (long and
  downstream tracks; 0 otherwise);
- ``rich``: ``rich_used_r1`` (= has_rich), ``rich_used_r2`` (0) and ``rich_dll_*`` (0 where
  has_rich is 0);
- ``muon``: ``muon_mu_ll``, ``muon_bg_ll`` of the isMuon tracks (0 otherwise).

``lamarr-col train MODEL --chain NAME`` uses it twice (:mod:`.train_model`): the training
conditions of a PID model take the *resolution* model's reconstructed kinematics (so the model
learns its response given the momentum and direction the flash will hand it, coupled to the
row's true particle), and the model's ``chain`` metrics compare the detailed rows with rows
made entirely by the chain (every upstream model's outputs as conditions). The PID inputs
that are themselves identification outputs (RICH DLLs and muon likelihoods for the global
PID) are learnt from the detailed pairs: a draw of an upstream model is independent of the
row's own response, so training on it would teach the downstream model to ignore its input.

:func:`combine_pid` makes the combined DLLs as the detailed reconstruction does
(:func:`lamarr_col.detailed.pid.run_pid`): sums of the subsystems' DLLs.
:func:`globalpid_fields` turns the global PID model's outputs into the ECAL DLL and the six
ProbNN: the model generates ln(ProbNN h / ProbNN π), and the ProbNN are their softmax, so
they sum to one exactly, as the detailed simulation's do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import numpy.typing as npt

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.specs import PROBNN, PROBNN_RATIOS, dp_scale, spec

__all__ = ["CHAIN", "UPSTREAM", "combine_pid", "flash_columns", "globalpid_fields"]

#: the charged models in the order the flash evaluates them
CHAIN = ("resolution", "ismuon", "rich", "muon", "globalpid")
#: the models each PID model's inputs come from at run time
UPSTREAM: dict[str, tuple[str, ...]] = {
    "ismuon": ("resolution",),
    "rich": ("resolution",),
    "muon": ("resolution", "ismuon"),
    "globalpid": ("resolution", "ismuon", "rich", "muon"),
}
_RESOLUTION = ("dx", "dy", "dtx", "dty", "chi2ndof", "ghost_prob", "dp_over_p_scaled")


def _inputs(name: str, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(table rows, float32 inputs) of the rows model ``name`` applies to (finite inputs)."""
    rows, _, x = spec(name).selected_inputs(columns)
    finite = np.isfinite(x).all(axis=1)
    return rows[finite], x[finite].astype(np.float32)


def flash_columns(
    columns: Mapping[str, np.ndarray], models: Mapping[str, Any], key: jax.Array
) -> dict[str, np.ndarray]:
    """A copy of ``columns`` (a training table) with the columns of every model in ``models``
    (name → loaded model; names from :data:`CHAIN`) replaced by that model's draws, in chain
    order (module docstring). Each row draws with ``fold_in(key_of_model, table row)``."""
    from lamarr_col.nn.classifier import predict_proba
    from lamarr_col.nn.generator import sample_rows

    unknown = sorted(set(models) - set(CHAIN[:-1]))
    if unknown:
        msg = f"flash_columns: no chain step for {', '.join(unknown)}; steps: {', '.join(CHAIN)}"
        raise ConfigError(msg)
    out = {k: np.array(v) for k, v in columns.items()}
    n = len(next(iter(out.values()))) if out else 0
    for step, name in enumerate(CHAIN[:-1]):
        if name not in models:
            continue
        k = jax.random.fold_in(key, step)
        rows, x = _inputs(name, out)
        if name == "ismuon":
            proba = predict_proba(models[name], x)[:, 1] if len(rows) else np.zeros(0)
            u = np.asarray(jax.random.uniform(k, (n,)))[rows]
            is_muon = np.zeros(n, out["is_muon"].dtype)
            is_muon[rows] = u < proba
            out["is_muon"] = is_muon
            continue
        y = sample_rows(models[name], k, x, row_ids=rows) if len(rows) else np.zeros((0, 8))
        if name == "resolution":
            _write_resolution(out, rows, y)
        elif name == "rich":
            has = y[:, 0] >= 0.5
            for c in ("rich_used_r1", "rich_used_r2"):
                out[c] = np.zeros(n, out[c].dtype)
            out["rich_used_r1"][rows] = has
            for i, h in enumerate(("e", "mu", "k", "p"), start=1):
                col = np.zeros(n, np.float32)
                col[rows] = np.where(has, y[:, i], 0.0)
                out[f"rich_dll_{h}"] = col
        else:  # muon
            for i, c in enumerate(("muon_mu_ll", "muon_bg_ll")):
                col = np.zeros(n, np.float32)
                col[rows] = y[:, i]
                out[c] = col
    return out


def _write_resolution(out: dict[str, np.ndarray], rows: np.ndarray, y: np.ndarray) -> None:
    """Residuals, fit quality, ghost probability and the reconstructed q/p and slopes."""
    got = dict(zip(_RESOLUTION, y.T, strict=True))
    for c in ("dx", "dy", "dtx", "dty", "chi2ndof", "ghost_prob"):
        out[c] = np.array(out[c], np.float64)
        out[c][rows] = got[c]
    dp = got["dp_over_p_scaled"] * dp_scale(out["track_type"][rows])
    out["dp_over_p"] = np.array(out["dp_over_p"], np.float64)
    out["dp_over_p"][rows] = dp
    p, pz = (np.asarray(out[c], np.float64)[rows] for c in ("p", "pz"))
    charge = np.asarray(out["charge"], np.float64)[rows]
    for c, slope in (("tx", "px"), ("ty", "py")):
        out[c] = np.array(out[c], np.float64)
        out[c][rows] = np.asarray(out[slope], np.float64)[rows] / pz + got[f"d{c}"]
    out["qop"] = np.array(out["qop"], np.float64)
    with np.errstate(divide="ignore"):
        out["qop"][rows] = charge / (p * (1.0 + dp))


def combine_pid(fields: Mapping[str, npt.ArrayLike]) -> dict[str, np.ndarray]:
    """The combined DLLs ``pid_e pid_mu pid_k pid_p`` (float32) from the RICH DLLs
    (``rich_dll_*``), the muon likelihoods (``muon_mu_ll``, ``muon_bg_ll``, 0 without isMuon)
    and the calorimeter's ``ecal_dll_e``: PIDe = RichDLLe + ECAL, PIDmu = RichDLLmu +
    (muLL − bgLL), PIDK = RichDLLK, PIDp = RichDLLp."""
    f = {k: np.asarray(v, np.float64) for k, v in fields.items()}
    return {
        "pid_e": (f["rich_dll_e"] + f["ecal_dll_e"]).astype(np.float32),
        "pid_mu": (f["rich_dll_mu"] + f["muon_mu_ll"] - f["muon_bg_ll"]).astype(np.float32),
        "pid_k": f["rich_dll_k"].astype(np.float32),
        "pid_p": f["rich_dll_p"].astype(np.float32),
    }


def globalpid_fields(y: npt.ArrayLike) -> dict[str, np.ndarray]:
    """The global PID model's outputs (n, 6): ``ecal_dll_e`` and ln(ProbNN h / ProbNN π) for
    h in e, μ, K, p, ghost → ``ecal_dll_e`` and ``probnn_{e,mu,pi,k,p,ghost}`` (float32), the
    ProbNN a softmax (each in [0, 1], summing to one)."""
    y = np.asarray(y, np.float64)
    if y.ndim != 2 or y.shape[1] != 1 + len(PROBNN_RATIOS):
        msg = f"globalpid_fields: expected (rows, {1 + len(PROBNN_RATIOS)}) outputs, got {y.shape}"
        raise InputError(msg)
    ratios = dict(zip(PROBNN_RATIOS, y[:, 1:].T, strict=True))
    logits = np.column_stack([ratios.get(h, np.zeros(len(y))) for h in PROBNN])
    logits -= logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    out = {"ecal_dll_e": y[:, 0].astype(np.float32)}
    out.update({f"probnn_{h}": proba[:, i].astype(np.float32) for i, h in enumerate(PROBNN)})
    return out
