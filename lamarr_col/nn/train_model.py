"""``lamarr-col train``: train one flash model on the detailed simulation's training tables.

:func:`train_model` reads the ROOT files of ``lamarr-col tables`` (TTree ``training``; only
the columns the model's :class:`~lamarr_col.nn.specs.ModelSpec` reads), takes the spec's rows,
holds out a test split (``TEST_FRACTION``, never seen in training or early stopping), trains
the architecture asked for (``mlp`` for classifiers; ``gan`` or ``flow`` for generators, or
``both``: the two trained on the same rows, their test metrics side by side in the card's
``comparison``, the one of lower two-sample AUC kept), then
measures its quality gates on the held-out rows (:mod:`lamarr_col.nn.quality`) and writes into
``<output>/<model-id>/<version>/``:

- ``model.safetensors`` and ``model.json`` (the card: inputs and outputs with units,
  preprocessing, training sample, command and seed, metrics, gates; :mod:`.weights`);
- ``loss.png`` (training and validation loss per epoch) and ``validation.png`` (generators:
  each target's held-out distribution against generated; classifiers: the reliability curve
  of each class), mplhep's LHCb2 style.

Everything random derives from ``seed``: the same files and seed give the same weights.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.specs import ModelSpec, _needed
from lamarr_col.nn.specs import spec as _spec

__all__ = [
    "ARCHITECTURES",
    "TEST_FRACTION",
    "classifier_quality",
    "generator_quality",
    "read_tables",
    "train_model",
    "validate_model",
]

#: architectures per spec kind ("both": train the GAN and the flow, keep the better)
ARCHITECTURES = {"classifier": ("mlp",), "generator": ("gan", "flow", "both")}
#: fraction of the rows held out for the quality gates
TEST_FRACTION = 0.2
#: the fewest rows per (p, η, nTracks) bin the binned distances aim at
ROWS_PER_BIN = 500
_TREE = "training"


def read_tables(
    files: Sequence[str | os.PathLike[str]], columns: set[str]
) -> dict[str, np.ndarray]:
    """The ``columns`` of the TTree ``training`` of every file, concatenated (numpy).
    :class:`InputError` names a missing or unreadable file, a file without the tree, and a
    missing column."""
    import uproot

    if not files:
        msg = "no training table given (--data FILE …)"
        raise InputError(msg)
    parts: list[dict[str, np.ndarray]] = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            msg = f"training table {path} does not exist"
            raise InputError(msg)
        try:
            with uproot.open(path) as root:
                if _TREE not in root:
                    msg = f"{path}: no TTree {_TREE!r} (write it with `lamarr-col tables`)"
                    raise InputError(msg)
                tree = root[_TREE]
                missing = sorted(columns - set(tree.keys()))
                if missing:
                    msg = f"{path}: the tree {_TREE!r} lacks the column(s) {', '.join(missing)}"
                    raise InputError(msg)
                parts.append(tree.arrays(sorted(columns), library="np"))
        except InputError:
            raise
        except Exception as err:  # uproot raises many kinds on corrupt files
            msg = f"{path}: cannot read it as a ROOT file ({type(err).__name__}: {err})"
            raise InputError(msg) from err
    return {c: np.concatenate([p[c] for p in parts]) for c in columns}


def _settings(arch: str) -> list[str]:
    """The keyword settings of an architecture's trainer (those train_model does not set)."""
    import inspect

    from lamarr_col.nn.flow_training import fit_flow
    from lamarr_col.nn.gan_training import fit_gan
    from lamarr_col.nn.training import train_classifier

    fn: Any = {"mlp": train_classifier, "flow": fit_flow, "gan": fit_gan}[arch]
    reserved = {"key", "progress", "passthrough", "passthrough_conditions", "auxiliary"}
    reserved |= {"sample_weight", "n_classes"}
    params = inspect.signature(fn).parameters
    return [p for p, v in params.items() if v.kind is v.KEYWORD_ONLY and p not in reserved]


def _check_options(opts: dict[str, Any], arch: str) -> None:
    """:class:`ConfigError` naming a trainer option no trainer of the architecture has
    (``both``: an option goes to whichever of the GAN and the flow has it)."""
    import difflib

    known = sorted(
        {s for a in (("flow", "gan") if arch == "both" else (arch,)) for s in _settings(a)}
    )
    for name in opts:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = (
                f"--option {name}: not a setting of the --arch {arch} trainer{hint}; "
                f"settings: {', '.join(known)}"
            )
            raise ConfigError(msg)


def _test_rows(n_table: int, key: jax.Array) -> np.ndarray:
    """(n_table,) bool: the table rows held out for the gates (the same for every model of a
    table and seed, whichever rows a model selects)."""
    order = np.asarray(jax.random.permutation(key, n_table))
    held = np.zeros(n_table, bool)
    held[order[: round(TEST_FRACTION * n_table)]] = True
    return held


def _upstream_models(
    name: str, chain: str, root: Path
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """The registered upstream models ``<step>-<chain>`` of model ``name`` under ``root``
    (:data:`~lamarr_col.nn.chain.UPSTREAM`) and their ids, versions and hashes."""
    from lamarr_col.nn.chain import UPSTREAM
    from lamarr_col.nn.weights import load_registered, read_registry

    if name not in UPSTREAM:
        msg = f"--chain: the {name} model has no upstream PID chain (only {', '.join(UPSTREAM)})"
        raise ConfigError(msg)
    registry = read_registry(root)["models"]
    models, used = {}, {}
    for step in UPSTREAM[name]:
        model_id = f"{step}-{chain}"
        if model_id not in registry:
            msg = (
                f"--chain {chain}: the {name} model needs the registered model {model_id} "
                f"in {root / 'registry.json'}; train and --register it first"
            )
            raise ConfigError(msg)
        models[step], card = load_registered(model_id, root=root)
        used[step] = {"model_id": model_id, "version": card["version"], "sha256": card["sha256"]}
    return models, used


def _chain_columns(name: str) -> set[str]:
    """The table columns the upstream models of model ``name`` read and rewrite."""
    from lamarr_col.nn.chain import UPSTREAM

    needed = set().union(*(_needed(_spec(s)) for s in UPSTREAM[name]))
    return needed | {"qop", "tx", "ty", "px", "py", "pz", "p", "charge", "dp_over_p"}


def _recorded_upstream(model_id: str, card: dict[str, Any], root: Path | None) -> dict[str, Any]:
    """The upstream models a chain-trained card records (ids, versions), loaded from ``root``
    and checked against the recorded sha256."""
    from lamarr_col.nn.weights import load_registered

    if "chain" not in card:
        msg = (
            f"validate --chain: {model_id} {card['version']} was not trained with --chain; "
            "its card records no upstream models"
        )
        raise ConfigError(msg)
    models = {}
    for step, used in card["chain"]["upstream"].items():
        models[step], up = load_registered(used["model_id"], used["version"], root=root)
        if up["sha256"] != used["sha256"]:
            msg = (
                f"validate --chain: {model_id} {card['version']} was trained on "
                f"{used['model_id']} {used['version']} with sha256 {used['sha256']}, but the "
                f"registered one has {up['sha256']}"
            )
            raise InputError(msg)
    return models


def train_model(
    model: ModelSpec,
    files: Sequence[str | os.PathLike[str]],
    *,
    arch: str,
    output: str | os.PathLike[str],
    version: str,
    seed: int = 0,
    model_id: str | None = None,
    max_epochs: int | None = None,
    max_rows: int | None = None,
    progress: bool = False,
    command: str = "",
    options: dict[str, Any] | None = None,
    chain: str | None = None,
    train_on: str = "detailed",
    balance: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Train ``model`` on the tables ``files`` (module docstring); returns the model folder
    and the card. ``model_id`` defaults to the spec's name; ``max_rows`` keeps the first rows
    (after the split's shuffle); ``options`` go to the trainer (width, depth, …).

    ``chain``: a PID model's upstream models are the registered ``<step>-<chain>`` of
    ``output`` (:mod:`.chain`); the card gets ``chain`` metrics (held-out detailed rows
    against rows made by the whole chain). ``train_on``: ``detailed`` (the detailed
    simulation's reconstructed kinematics as conditions) or ``chain`` (the resolution model's,
    coupled to each row's true particle). ``balance``: weight a generator's training rows by
    1/√(rows of their species × track type), so rare categories (electrons, downstream
    tracks) get more of the network; weights that depend on the conditions alone leave the
    conditional distribution the generator learns unchanged."""
    allowed = ARCHITECTURES[model.kind]
    if arch not in allowed:
        msg = f"--arch {arch}: the {model.name} model is a {model.kind}; use {' or '.join(allowed)}"
        raise ConfigError(msg)
    if train_on not in ("detailed", "chain") or (train_on == "chain" and chain is None):
        msg = f"--train-on {train_on}: use detailed, or chain together with --chain NAME"
        raise ConfigError(msg)
    upstream: dict[str, Any] = {}
    used: dict[str, dict[str, str]] = {}
    needed = _needed(model)
    if chain is not None:
        upstream, used = _upstream_models(model.name, chain, Path(output))
        needed |= _chain_columns(model.name)
    table = read_tables(files, needed)
    where = ", ".join(str(f) for f in files)
    key = jax.random.key(seed)
    k_split, k_train, k_gate = jax.random.split(key, 3)
    k_chain = jax.random.fold_in(k_gate, 7)
    if train_on == "chain":
        from lamarr_col.nn.chain import flash_columns

        kin = flash_columns(table, {"resolution": upstream["resolution"]}, k_chain)
        rows = model.rows({**table, **{c: kin[c] for c in ("qop", "tx", "ty")}}, where=where)
    else:
        rows = model.rows(table, where=where)
    x = rows["x"]
    if len(x) < 50:
        msg = f"the {model.name} model: only {len(x)} usable rows in the tables; need at least 50"
        raise InputError(msg)
    held = _test_rows(len(next(iter(table.values()))), k_split)
    train, test = np.flatnonzero(~held[rows["index"]]), np.flatnonzero(held[rows["index"]])
    if max_rows is not None:
        train = train[:max_rows]
    opts = dict(options or {})
    if max_epochs is not None:
        opts["max_epochs"] = max_epochs
    _check_options(opts, "mlp" if model.kind == "classifier" else arch)
    if balance and model.kind == "classifier":
        msg = f"--balance: the {model.name} model is a classifier; balancing is for generators"
        raise ConfigError(msg)
    weights = _balance_weights(model, x[train]) if balance else None
    comparison: dict[str, Any] = {}
    if model.kind == "classifier":
        result = _train_classifier(model, rows, train, test, k_train, opts, progress)
    elif arch != "both":
        result = _train_generator(
            model, rows, train, test, arch, k_train, k_gate, opts, progress, weights
        )
    else:
        results = {
            a: _train_generator(
                model, rows, train, test, a, k_train, k_gate, opts, progress, weights
            )
            for a in ("gan", "flow")
        }
        for a, (_, hist, met, gate, _) in results.items():
            comparison[a] = {
                "two_sample_auc": met["test"]["two_sample"]["auc"],
                "two_sample_auc_error": met["test"]["two_sample"]["auc_error"],
                "wasserstein_norm_median": met["test"]["binned"]["wasserstein_norm_median"],
                "wasserstein_norm_max": met["test"]["binned"]["wasserstein_norm_max"],
                "gates_passed": gate["passed"],
                "epochs": len(next(iter(hist.values()), [])),
            }
        # the better one: the lower two-sample AUC (the closer to indistinguishable)
        arch = min(comparison, key=lambda a: comparison[a]["two_sample_auc"])
        comparison["chosen"] = arch
        result = results[arch]
    net, history, metrics, gates, figures = result
    chain_card: dict[str, Any] = {}
    if chain is not None:
        chain_card = {
            "name": chain,
            "upstream": used,
            "trained_on": train_on,
            **_chain_metrics(model, net, table, upstream, held, k_chain, where),
        }
    card = {
        "model_id": model_id or model.name,
        "version": version,
        "spec": model.name,
        "description": model.doc,
        "inputs": [f.card() for f in model.inputs],
        "outputs": list(model.classes)
        if model.kind == "classifier"
        else [f.card() for f in model.targets],
        "training": {
            "sample": [str(Path(f).name) for f in files],
            "rows": {"train": len(train), "test": len(test)},
            "dropped_non_finite": int(rows["dropped"]),
            "command": command,
            "seed": seed,
            "arch": arch,
            "options": opts,
            "balance": balance,
        },
        "metrics": metrics,
        "gates": gates,
        **({"comparison": comparison} if comparison else {}),
        **({"chain": chain_card} if chain_card else {}),
        "history": history,
    }
    from lamarr_col.nn.weights import save_model

    folder = Path(output) / str(card["model_id"]) / version
    save_model(folder, net, card)
    _plots(folder, history, figures)
    saved = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    return folder, saved


def _balance_weights(model: ModelSpec, x: np.ndarray) -> np.ndarray:
    """1/√(rows of the row's species × track-type category), normalised to a mean of 1."""
    code = np.zeros(len(x), np.int64)
    for i, mask in enumerate(model.categories(x).values()):
        code |= mask.astype(np.int64) << i
    _, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
    w = counts[inverse].astype(np.float64) ** -0.5
    return w * (len(w) / w.sum())


def _train_classifier(
    model: ModelSpec,
    rows: dict[str, np.ndarray],
    train: np.ndarray,
    test: np.ndarray,
    key: jax.Array,
    opts: dict[str, Any],
    progress: bool,
) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    from lamarr_col.nn.quality import model_gates
    from lamarr_col.nn.training import train_classifier

    x, y = rows["x"], rows["labels"]
    trained = train_classifier(
        x[train],
        y[train],
        n_classes=len(model.classes),
        key=key,
        passthrough=model.passthrough,
        progress=progress,
        **opts,
    )
    test_metrics, proba = classifier_quality(model, trained.classifier, x[test], y[test])
    metrics = {"test": test_metrics, "validation": trained.metrics}
    checks = model_gates(test_metrics, "classifier")
    figures = {"kind": "classifier", "proba": proba, "labels": y[test], "classes": model.classes}
    return trained.classifier, trained.history, metrics, checks, figures


_BIN_COLUMNS = (("log_p", "log_p_rec"), ("eta", "eta_rec"), ("n_tracks",))


def _train_generator(
    model: ModelSpec,
    rows: dict[str, np.ndarray],
    train: np.ndarray,
    test: np.ndarray,
    arch: str,
    key: jax.Array,
    k_gate: jax.Array,
    opts: dict[str, Any],
    progress: bool,
    weights: np.ndarray | None = None,
) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    from lamarr_col.nn.quality import model_gates

    x, y = rows["x"], rows["y"]
    opts = {k: v for k, v in opts.items() if k in _settings(arch)}  # ("both": this arch's)
    if arch == "flow":
        from lamarr_col.nn.flow_training import fit_flow

        trained = fit_flow(
            x[train],
            y[train],
            key=key,
            passthrough_conditions=model.passthrough,
            sample_weight=weights,
            progress=progress,
            **opts,
        )
    else:
        from lamarr_col.nn.gan_training import fit_gan

        trained = fit_gan(
            x[train],
            y[train],
            key=key,
            auxiliary=model.auxiliary,
            passthrough_conditions=model.passthrough,
            sample_weight=weights,
            progress=progress,
            **opts,
        )
    test_metrics, generated = generator_quality(
        model, trained.generator, x[test], y[test], x[test], k_gate
    )
    metrics = {"validation": trained.metrics, "test": test_metrics}
    checks = model_gates(test_metrics, "generator")
    figures = {
        "kind": "generator",
        "reference": y[test],
        "generated": generated,
        "names": [f.name for f in model.targets],
    }
    return trained.generator, trained.history, metrics, checks, figures


def validate_model(
    model_id: str,
    files: Sequence[str | os.PathLike[str]],
    *,
    root: str | os.PathLike[str] | None = None,
    version: str | None = None,
    seed: int = 0,
    chain: bool = False,
) -> dict[str, Any]:
    """Measure a registered model's quality gates afresh on every row of the tables
    ``files`` (a sample it never saw): {``model_id``, ``version``, ``rows``, ``metrics``,
    ``gates``}. ``root``: the weights folder (default: the shipped weights). ``chain``: also
    the ``chain`` record ({``metrics``, ``gates``}) of a model trained with ``--chain``: its
    inputs made by the upstream models its card records (those exact versions), against the
    detailed rows."""
    from lamarr_col.nn.quality import model_gates
    from lamarr_col.nn.weights import load_registered

    folder = None if root is None else Path(root)
    net, card = load_registered(model_id, version, root=folder)
    model = _spec(str(card.get("spec") or model_id.split("-", maxsplit=1)[0]))
    upstream = _recorded_upstream(model_id, card, folder) if chain else {}
    where = ", ".join(map(str, files))
    table = read_tables(files, _needed(model) | (_chain_columns(model.name) if chain else set()))
    rows = model.rows(table, where=where)
    if len(rows["x"]) < 50:
        msg = f"validate {model_id}: only {len(rows['x'])} usable rows in the tables; need 50"
        raise InputError(msg)
    if model.kind == "classifier":
        metrics, _ = classifier_quality(model, net, rows["x"], rows["labels"])
    else:
        metrics, _ = generator_quality(
            model, net, rows["x"], rows["y"], rows["x"], jax.random.key(seed)
        )
        metrics.pop("bins")
    result = {
        "model_id": model_id,
        "version": card["version"],
        "rows": len(rows["x"]),
        "metrics": metrics,
        "gates": model_gates(metrics, model.kind),
    }
    if chain:
        every = np.ones(len(next(iter(table.values()))), bool)
        key = jax.random.fold_in(jax.random.key(seed), 7)
        result["chain"] = _chain_metrics(model, net, table, upstream, every, key, where)
    return result


def _chain_metrics(
    model: ModelSpec,
    net: Any,
    table: dict[str, np.ndarray],
    upstream: dict[str, Any],
    held: np.ndarray,
    key: jax.Array,
    where: str,
) -> dict[str, Any]:
    """The model fed by the whole upstream chain against the detailed simulation, on the
    held-out table rows: ``metrics`` and ``gates`` as the model's own."""
    from lamarr_col.nn.chain import flash_columns
    from lamarr_col.nn.quality import model_gates

    ref = model.rows(table, where=where)
    flash = model.rows(flash_columns(table, upstream, key), where=f"{where} (chain)")
    r_test, f_test = held[ref["index"]], held[flash["index"]]
    if model.kind == "classifier":
        metrics, _ = classifier_quality(model, net, flash["x"][f_test], flash["labels"][f_test])
        return {
            "metrics": metrics,
            "gates": model_gates(metrics, "classifier"),
        }
    metrics, _ = generator_quality(
        model,
        net,
        ref["x"][r_test],
        ref["y"][r_test],
        flash["x"][f_test],
        jax.random.fold_in(key, 1),
    )
    metrics.pop("bins")
    return {
        "metrics": metrics,
        "gates": model_gates(metrics, "generator"),
    }


def classifier_quality(
    model: ModelSpec, net: Any, x: np.ndarray, labels: np.ndarray
) -> tuple[dict[str, Any], np.ndarray]:
    """The quality measures of classifier ``net`` (spec ``model``) on rows ``x`` with their
    true ``labels``: ({classification metrics, ``ece_by_category``}, the probabilities)."""
    from lamarr_col.nn.classifier import predict_proba
    from lamarr_col.nn.quality import ece_by_category
    from lamarr_col.nn.training import classification_metrics

    proba = predict_proba(net, x)
    metrics = classification_metrics(proba, labels)
    metrics["ece_by_category"] = ece_by_category(proba, labels, model.categories(x))
    return metrics, proba


def generator_quality(
    model: ModelSpec,
    net: Any,
    cond_ref: np.ndarray,
    reference: np.ndarray,
    cond_gen: np.ndarray,
    key: jax.Array,
) -> tuple[dict[str, Any], np.ndarray]:
    """The quality measures of generator ``net`` (spec ``model``): rows ``reference`` given
    ``cond_ref`` against its draws given ``cond_gen`` (the same rows, or the chain's):
    ({``two_sample``, ``two_sample_by_category``, ``binned`` summary, ``bins``}, the draws)."""
    from lamarr_col.nn.generator import sample_rows
    from lamarr_col.nn.quality import (
        binned_distances,
        summary,
        two_sample_auc,
        two_sample_by_category,
    )

    k_sample, k_auc = jax.random.split(key)
    generated = sample_rows(net, k_sample, cond_gen, names=model.input_names)
    auc = two_sample_auc(
        reference, generated, cond_ref, cond_gen, key=k_auc, passthrough=_passthrough(model)
    )
    by_category = two_sample_by_category(
        reference,
        generated,
        cond_ref,
        cond_gen,
        model.categories(cond_ref),
        model.categories(cond_gen),
        key=jax.random.fold_in(k_auc, 1),
        passthrough=_passthrough(model),
    )
    distances = binned_distances(
        reference,
        generated,
        cond_ref,
        cond_gen,
        _bin_edges(model, cond_ref),
        names=[f.name for f in model.targets],
        condition_names=model.input_names,
    )
    return {
        "two_sample": auc,
        "two_sample_by_category": by_category,
        "binned": summary(distances),
        "bins": distances,
    }, generated


def _bin_edges(model: ModelSpec, x: np.ndarray) -> dict[int, np.ndarray]:
    """Quantile edges of the p, η and nTracks conditions of ``x`` (those the model has):
    quartiles, or fewer equal-population bins per axis when the rows are too few for
    ``ROWS_PER_BIN`` rows in each (the binned distances' noise floor is ≈ 1/√rows)."""
    names = model.input_names
    cols = [
        col
        for options in _BIN_COLUMNS
        if (col := next((names.index(c) for c in options if c in names), None)) is not None
    ]
    if not cols:
        return {}
    per_axis = int(np.clip(np.floor((len(x) / ROWS_PER_BIN) ** (1 / len(cols))), 1, 4))
    probs = np.linspace(0.0, 1.0, per_axis + 1)
    return {col: np.quantile(x[:, col], probs) for col in cols}


def _passthrough(model: ModelSpec) -> list[bool]:
    """The two-sample classifier's flag columns: none of the targets, the spec's inputs'."""
    return [False] * len(model.targets) + model.passthrough


def _plots(folder: Path, history: dict[str, list[float]], figures: dict[str, Any]) -> None:
    import matplotlib.style
    import mplhep as hep
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.style.context(hep.style.LHCb2):
        fig = Figure(figsize=(10, 8), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for name, values in history.items():
            if len(values) and np.isfinite(values).any():
                ax.plot(np.arange(1, len(values) + 1), values, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(fontsize=14)
        fig.savefig(folder / "loss.png", dpi=80)

        if figures["kind"] == "generator":
            names = figures["names"]
            ncols = min(len(names), 4)
            nrows = -(-len(names) // ncols)
            fig = Figure(figsize=(6 * ncols, 5 * nrows), layout="constrained")
            FigureCanvasAgg(fig)
            axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
            ref, gen = figures["reference"], figures["generated"]
            for i, name in enumerate(names):
                lo, hi = np.quantile(ref[:, i], [0.005, 0.995])
                bins = np.linspace(lo, hi, 50) if hi > lo else 50
                axes[i].hist(ref[:, i], bins, histtype="step", density=True, label="detailed")
                axes[i].hist(gen[:, i], bins, histtype="step", density=True, label="generated")
                axes[i].set_xlabel(name, fontsize=16)
                axes[i].legend(fontsize=12)
            for ax in axes[len(names) :]:
                ax.set_visible(False)
        else:
            proba, labels, classes = figures["proba"], figures["labels"], figures["classes"]
            fig = Figure(figsize=(10, 8), layout="constrained")
            FigureCanvasAgg(fig)
            ax = fig.subplots()
            edges = np.linspace(0.0, 1.0, 11)
            for k, name in enumerate(classes):
                b = np.clip(np.digitize(proba[:, k], edges) - 1, 0, 9)
                n = np.bincount(b, minlength=10)
                hit = np.bincount(b, weights=(labels == k), minlength=10)
                mean = np.bincount(b, weights=proba[:, k], minlength=10)
                ok = n > 0
                ax.plot(mean[ok] / n[ok], hit[ok] / n[ok], "o-", label=name)
            ax.plot([0, 1], [0, 1], "k--", lw=1)
            ax.set_xlabel("predicted probability")
            ax.set_ylabel("observed fraction")
            ax.legend(fontsize=14)
        fig.savefig(folder / "validation.png", dpi=80)
