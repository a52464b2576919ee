"""`lamarr-col train` and the model specs, on seeded synthetic training tables."""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import pytest
import uproot

from lamarr_col.cli import main
from lamarr_col.errors import ConfigError, InputError
from lamarr_col.nn.chain import combine_pid, flash_columns, globalpid_fields
from lamarr_col.nn.classifier import predict_proba
from lamarr_col.nn.generator import sample_rows
from lamarr_col.nn.quality import GENERATOR_TARGETS, applicable_targets
from lamarr_col.nn.specs import SPECS, TRACKING_CLASSES, spec
from lamarr_col.nn.train_model import read_tables, train_model, validate_model
from lamarr_col.nn.weights import load_model, load_registered, register


def _table(n: int, seed: int) -> dict[str, np.ndarray]:
    """Rows shaped like `lamarr-col tables`: the tracking class follows η (acceptance) and p."""
    rng = np.random.default_rng(seed)
    eta = rng.uniform(1.0, 6.0, n)
    p = np.exp(rng.uniform(np.log(1500.0), np.log(1e5), n))
    phi = rng.uniform(-np.pi, np.pi, n)
    pt = p / np.cosh(eta)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    inside = (eta > 2.0) & (eta < 5.0)
    found = inside & (rng.uniform(size=n) < 0.9)
    track_type = np.where(found, np.where(p > 5000.0, 3, 4), 0).astype(np.int8)
    pid = rng.choice([211, -211, 321, 13, 11, 2212], n)
    is_muon = (np.abs(pid) == 13) & (track_type == 3) & (rng.uniform(size=n) < 0.95)
    slope_x, slope_y = px / pz, py / pz
    species = np.abs(pid)
    has_rich = found & (rng.uniform(size=n) < 0.9)
    # RICH DLLs: species-dependent means, K and p exactly 0 below threshold, 0 without RICH
    dll = {
        h: np.where(has_rich, rng.normal(np.where(species == code, 8.0, -4.0), 3.0), 0.0)
        for h, code in (("e", 11), ("mu", 13), ("k", 321), ("p", 2212))
    }
    for h in ("k", "p"):
        dll[h] = np.where(p < 3000.0, 0.0, dll[h])
    # muon likelihoods: values of a binned table, 0 without isMuon
    levels = np.array([-0.5, -1.2, -2.1, -3.3, -4.0])
    ecal = np.where(rng.uniform(size=n) < 0.2, rng.normal(np.where(species == 11, 3.0, -6.0)), 0.0)
    logits = rng.normal(size=(n, 6)) + 3.0 * (
        species[:, None] == np.array([11, 13, 211, 321, 2212, 0])
    )
    probnn = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {
        "origin": np.zeros(n, np.int8),
        "pid": pid.astype(np.int32),
        "charge": np.sign(pid).astype(np.float32),
        "p": p,
        "px": px,
        "py": py,
        "pz": pz,
        "eta": eta,
        "phi": phi,
        "vx": rng.normal(0, 0.01, n),
        "vy": rng.normal(0, 0.01, n),
        "vz": rng.normal(0, 50, n),
        "acceptance_type": np.where(inside, 3, 0).astype(np.int8),
        "track_type": track_type,
        "qop": np.where(found, np.sign(pid) / (p * (1 + rng.normal(0, 0.005, n))), np.nan),
        "tx": np.where(found, slope_x, np.nan),
        "ty": np.where(found, slope_y, np.nan),
        "n_tracks": rng.integers(10, 200, n).astype(np.int32),
        "is_muon": is_muon,
        # residuals: widths that grow at low momentum (multiple scattering)
        **{
            name: np.where(found, rng.normal(0.0, width * (1.0 + 5000.0 / p)), np.nan)
            for name, width in (("dx", 0.01), ("dy", 0.01), ("dtx", 1e-4), ("dty", 1e-4))
        },
        "dp_over_p": np.where(found, rng.normal(0.0, 0.005, n), np.nan),
        "chi2ndof": np.where(found, rng.chisquare(20, n) / 20, np.nan),
        "ghost_prob": np.where(found, rng.beta(1, 20, n), np.nan),
        "rich_used_r1": has_rich,
        "rich_used_r2": has_rich & (p > 10000.0),
        **{f"rich_dll_{h}": v.astype(np.float32) for h, v in dll.items()},
        "muon_mu_ll": np.where(is_muon, rng.choice(levels, n), 0.0).astype(np.float32),
        "muon_bg_ll": np.where(is_muon, rng.choice(levels - 0.7, n), 0.0).astype(np.float32),
        "pid_e": (dll["e"] + ecal).astype(np.float32),
        **{
            f"probnn_{h}": np.where(found, probnn[:, i], np.nan).astype(np.float32)
            for i, h in enumerate(("e", "mu", "pi", "k", "p", "ghost"))
        },
    }


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    paths = []
    for seed in (1, 2):
        path = folder / f"t{seed}.root"
        with uproot.recreate(path) as f:
            f["training"] = _table(3000, seed)
        paths.append(path)
    return paths


def test_tracking_labels_and_rows():
    t = _table(500, 3)
    rows = SPECS["tracking"].rows(t)
    labels = rows["labels"]
    assert len(labels) == 500
    expected = np.where(t["acceptance_type"] == 0, 0, 1)
    expected = np.where(t["track_type"] == 3, 2, np.where(t["track_type"] == 4, 3, expected))
    np.testing.assert_array_equal(labels, expected)
    assert rows["x"].shape == (500, len(SPECS["tracking"].inputs))
    # the muon classifier takes long and downstream tracks only, and drops nothing finite
    mu = SPECS["ismuon"].rows(t)
    assert len(mu["labels"]) == int((t["track_type"] == 3).sum())
    assert int(mu["dropped"]) == 0


def test_rows_drop_non_finite_and_name_missing_columns():
    t = _table(200, 4)
    t["vz"][:7] = np.nan
    assert int(SPECS["tracking"].rows(t)["dropped"]) == 7
    del t["phi"]
    with pytest.raises(InputError, match="phi"):
        SPECS["tracking"].rows(t, where="t.root")
    with pytest.raises(ConfigError, match="did you mean 'tracking'"):
        spec("trackin")


def test_train_a_classifier_writes_a_loadable_model_with_its_card(tables, tmp_path):
    folder, card = train_model(
        SPECS["tracking"],
        tables,
        arch="mlp",
        output=tmp_path,
        version="v9",
        seed=3,
        max_epochs=15,
        options={"batch_size": 256},
    )
    assert {p.name for p in folder.iterdir()} == {
        "model.safetensors",
        "model.json",
        "loss.png",
        "validation.png",
    }
    assert card["outputs"] == list(TRACKING_CLASSES)
    assert [i["name"] for i in card["inputs"]] == SPECS["tracking"].input_names
    assert card["training"]["rows"] == {"train": 4800, "test": 1200}
    assert "ece" in card["gates"]["gates"]
    model, loaded = load_model(folder)
    assert loaded["sha256"] == card["sha256"]
    # it learned the acceptance: inside 2 < η < 5 the particle is rarely out of acceptance
    t = _table(400, 9)
    rows = SPECS["tracking"].rows(t)
    proba = predict_proba(model, rows["x"])
    inside = (t["eta"] > 2.2) & (t["eta"] < 4.8)
    outside = (t["eta"] < 1.8) | (t["eta"] > 5.2)
    assert proba[inside, 0].mean() < 0.2
    assert proba[outside, 0].mean() > 0.8
    # the same seed gives the same weights
    again, _ = train_model(
        SPECS["tracking"],
        tables,
        arch="mlp",
        output=tmp_path / "b",
        version="v9",
        seed=3,
        max_epochs=15,
        options={"batch_size": 256},
    )
    assert (again / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()


@pytest.mark.parametrize("arch", ["flow", "gan"])
def test_train_a_generator(tables, tmp_path, arch):
    folder, card = train_model(
        SPECS["resolution"],
        tables,
        arch=arch,
        output=tmp_path,
        version="v1",
        seed=1,
        max_epochs=3,
        options={"batch_size": 256, "width": 16, "depth": 1},
    )
    assert card["kind"] == arch
    assert [o["name"] for o in card["outputs"]] == [f.name for f in SPECS["resolution"].targets]
    assert set(card["gates"]["gates"]) == {"two_sample.auc", "binned.wasserstein_norm_median"}
    assert 0.0 <= card["metrics"]["test"]["two_sample"]["auc"] <= 1.0
    assert (folder / "validation.png").stat().st_size > 0
    model, _ = load_model(folder)
    rows = SPECS["resolution"].rows(_table(50, 5))
    out = sample_rows(model, jax.random.key(0), rows["x"])
    assert out.shape == (len(rows["x"]), len(SPECS["resolution"].targets))
    assert np.isfinite(out).all()


def test_train_both_keeps_the_better_generator(tables, tmp_path):
    _, card = train_model(
        SPECS["resolution"],
        tables,
        arch="both",
        output=tmp_path,
        version="v1",
        seed=2,
        max_epochs=2,
        options={"batch_size": 256, "width": 16, "depth": 1},
    )
    comparison = card["comparison"]
    assert set(comparison) == {"gan", "flow", "chosen"}
    chosen = comparison["chosen"]
    other = "gan" if chosen == "flow" else "flow"
    assert comparison[chosen]["two_sample_auc"] <= comparison[other]["two_sample_auc"]
    assert card["kind"] == card["training"]["arch"] == chosen


def test_train_errors(tables, tmp_path):
    with pytest.raises(ConfigError, match="use gan or flow"):
        train_model(SPECS["rich"], tables, arch="mlp", output=tmp_path, version="v1")
    with pytest.raises(InputError, match="does not exist"):
        read_tables([tmp_path / "nope.root"], {"p"})
    with pytest.raises(InputError, match="lacks the column"):
        read_tables(tables, {"p", "cov_x_x"})
    bad = tmp_path / "bad.root"
    bad.write_bytes(b"not a root file")
    with pytest.raises(InputError, match=r"bad\.root"):
        read_tables([bad], {"p"})


def test_train_command_registers(tables, tmp_path, capsys):
    out = tmp_path / "weights"
    argv = ["train", "ismuon", "--data", *map(str, tables), "--arch", "mlp", "-o", str(out)]
    assert main([*argv, "--epochs", "3", "--register", "--no-progress"]) == 0
    assert "gates: ece" in capsys.readouterr().out
    _, card = load_registered("ismuon", root=out)
    assert card["outputs"] == ["not_muon", "is_muon"]
    registry = json.loads((out / "registry.json").read_text())
    assert registry["models"]["ismuon"]["default"] == "v1"
    assert main(["train", "nope", "--data", str(tables[0]), "--arch", "mlp"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main([*argv, "--option", "widht=8"]) == 2
    assert "did you mean 'width'" in capsys.readouterr().err
    assert main([*argv, "--option", "width"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


_TINY = {"batch_size": 256, "width": 8, "depth": 1}


@pytest.fixture(scope="module")
def chain_weights(tables, tmp_path_factory):
    """Tiny upstream models of the PID chain, registered as <step>-toy."""
    out = tmp_path_factory.mktemp("weights")
    for name, arch in (("resolution", "flow"), ("ismuon", "mlp"), ("rich", "flow")):
        train_model(
            SPECS[name],
            tables,
            arch=arch,
            output=out,
            version="v1",
            model_id=f"{name}-toy",
            max_epochs=1,
            options=_TINY if arch == "flow" else {"batch_size": 256, "width": 8},
            **({"chain": "toy"} if name != "resolution" else {}),
        )
        register(out, f"{name}-toy", "v1")
    return out


def test_flash_columns_replace_what_each_model_makes(tables, chain_weights):
    table = read_tables(tables[:1], set(_table(1, 0)))
    models = {
        s: load_registered(f"{s}-toy", root=chain_weights)[0]
        for s in ("resolution", "ismuon", "rich")
    }
    key = jax.random.key(3)
    flash = flash_columns(table, models, key)
    again = flash_columns(table, models, key)
    for c in flash:
        np.testing.assert_array_equal(flash[c], again[c])  # keyed: reproducible
    rows = SPECS["resolution"].rows(table)["index"]
    # the reconstructed momentum is the generated Δp/p's, the slopes the generated residuals'
    p_rec = 1.0 / np.abs(flash["qop"][rows])
    np.testing.assert_allclose(p_rec, table["p"][rows] * (1 + flash["dp_over_p"][rows]), rtol=1e-9)
    np.testing.assert_array_equal(np.sign(flash["qop"][rows]), table["charge"][rows])
    tx = table["px"][rows] / table["pz"][rows] + flash["dtx"][rows]
    np.testing.assert_allclose(flash["tx"][rows], tx, rtol=1e-12)
    assert not np.array_equal(flash["dp_over_p"][rows], table["dp_over_p"][rows])
    # without RICH information every DLL is 0; isMuon only for long and downstream tracks
    no_rich = ~flash["rich_used_r1"].astype(bool)
    for h in ("e", "mu", "k", "p"):
        assert (flash[f"rich_dll_{h}"][no_rich] == 0).all()
    assert not flash["is_muon"][~np.isin(table["track_type"], [3, 5])].any()
    assert 0 < flash["is_muon"].sum() < len(rows)
    # a model's own target columns and the truth are never touched
    for c in ("p", "px", "pid", "pid_e", "probnn_e", "track_type"):
        np.testing.assert_array_equal(flash[c], table[c])
    with pytest.raises(ConfigError, match="no chain step for globalpid"):
        flash_columns(table, {"globalpid": None}, key)


def test_train_with_the_chain(tables, chain_weights, tmp_path):
    _, card = train_model(
        SPECS["muon"],
        tables,
        arch="flow",
        output=chain_weights,
        version="v1",
        model_id="muon-toy",
        max_epochs=1,
        options=_TINY,
        chain="toy",
        train_on="chain",
    )
    chain = card["chain"]
    assert set(chain["upstream"]) == {"resolution", "ismuon"}
    assert chain["upstream"]["ismuon"]["model_id"] == "ismuon-toy"
    assert chain["trained_on"] == "chain"
    assert 0.0 <= chain["metrics"]["two_sample"]["auc"] <= 1.0
    assert set(chain["gates"]["gates"]) == set(
        applicable_targets(GENERATOR_TARGETS, chain["metrics"])
    )
    # the muon log-likelihoods are values of a binned table: atoms of the targets' map
    model, _ = load_model(chain_weights / "muon-toy" / "v1")
    atoms = sorted(a[1] for a in model.targets_map.atoms if a[0] == 0)
    assert atoms == pytest.approx([-4.0, -3.3, -2.1, -1.2, -0.5])
    with pytest.raises(ConfigError, match="needs the registered model resolution-toy"):
        train_model(
            SPECS["globalpid"], tables, arch="flow", output=tmp_path, version="v1", chain="toy"
        )
    with pytest.raises(ConfigError, match="needs the registered model resolution-toy"):
        train_model(SPECS["rich"], tables, arch="flow", output=tmp_path, version="v1", chain="toy")
    with pytest.raises(ConfigError, match="--train-on chain"):
        train_model(
            SPECS["rich"], tables, arch="flow", output=tmp_path, version="v1", train_on="chain"
        )
    with pytest.raises(ConfigError, match="no upstream PID chain"):
        train_model(
            SPECS["covariance"],
            tables,
            arch="flow",
            output=chain_weights,
            version="v1",
            chain="toy",
        )


def test_combine_pid_sums_the_subsystems():
    fields = {
        "rich_dll_e": [1.0, -2.0],
        "rich_dll_mu": [0.5, 0.0],
        "rich_dll_k": [3.0, 0.0],
        "rich_dll_p": [-1.0, 0.0],
        "muon_mu_ll": [-0.2, 0.0],
        "muon_bg_ll": [-3.0, 0.0],
        "ecal_dll_e": [4.0, 0.0],
    }
    out = combine_pid(fields)
    np.testing.assert_allclose(out["pid_e"], [5.0, -2.0])
    np.testing.assert_allclose(out["pid_mu"], [3.3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out["pid_k"], [3.0, 0.0])
    np.testing.assert_allclose(out["pid_p"], [-1.0, 0.0])


def test_globalpid_outputs_give_back_the_probnn():
    """The spec's targets (ECAL DLL, ln ProbNN h/π) → globalpid_fields: the table's ProbNN
    again; any outputs, however extreme, give probabilities in [0, 1] that sum to one."""
    t = _table(400, 4)
    rows = SPECS["globalpid"].rows(t)
    assert rows["y"].shape[1] == 6
    got = globalpid_fields(rows["y"])
    for h in ("e", "mu", "pi", "k", "p", "ghost"):
        np.testing.assert_allclose(got[f"probnn_{h}"], t[f"probnn_{h}"][rows["index"]], rtol=1e-5)
    np.testing.assert_allclose(got["ecal_dll_e"], (t["pid_e"] - t["rich_dll_e"])[rows["index"]])
    wild = np.random.default_rng(0).normal(0.0, 300.0, (1000, 6))
    proba = np.column_stack([v for k, v in globalpid_fields(wild).items() if k != "ecal_dll_e"])
    assert np.isfinite(proba).all()
    assert (proba >= 0).all()
    assert (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(InputError, match=r"expected \(rows, 6\)"):
        globalpid_fields(wild[:, :5])


def test_validate_measures_the_gates_on_fresh_tables(tables, chain_weights, tmp_path, capsys):
    fresh = tmp_path / "fresh.root"
    with uproot.recreate(fresh) as f:
        f["training"] = _table(3000, 9)
    result = validate_model("rich-toy", [fresh], root=chain_weights, seed=1)
    assert result["version"] == "v1"
    assert result["rows"] == len(SPECS["rich"].rows(_table(3000, 9))["x"])
    assert set(result["gates"]["gates"]) == set(GENERATOR_TARGETS)  # incl. the categories'
    assert 0.0 <= result["metrics"]["two_sample"]["auc"] <= 1.0
    checked = validate_model("ismuon-toy", [fresh], root=chain_weights)["gates"]
    assert checked["gates"]["ece"]["value"] >= 0.0
    # the command prints every gate and fails (exit 1) when one fails
    argv = ["validate", "ismuon-toy", "--data", str(fresh), "--weights", str(chain_weights)]
    code = main(argv)
    out = capsys.readouterr().out
    assert "ismuon-toy v1 on" in out
    assert "ece = " in out
    assert code == (0 if checked["passed"] else 1)
    assert (
        main(["validate", "nope-toy", "--data", str(fresh), "--weights", str(chain_weights)]) == 2
    )
    assert "nope-toy" in capsys.readouterr().err


def test_validate_with_the_recorded_chain(tables, chain_weights, tmp_path, capsys):
    fresh = tmp_path / "fresh.root"
    with uproot.recreate(fresh) as f:
        f["training"] = _table(3000, 10)
    result = validate_model("rich-toy", [fresh], root=chain_weights, seed=1, chain=True)
    chain = result["chain"]
    assert set(chain["gates"]["gates"]) == set(
        applicable_targets(GENERATOR_TARGETS, chain["metrics"])
    )
    assert chain["metrics"]["two_sample"]["auc"] != result["metrics"]["two_sample"]["auc"]
    assert "chain" not in validate_model("rich-toy", [fresh], root=chain_weights, seed=1)
    argv = ["validate", "rich-toy", "--data", str(fresh), "--weights", str(chain_weights)]
    code = main([*argv, "--chain", "--seed", "1"])
    out = capsys.readouterr().out
    assert "  chain: two_sample.auc = " in out
    assert code == (0 if result["gates"]["passed"] and chain["gates"]["passed"] else 1)
    # a model trained without --chain has no recorded chain
    with pytest.raises(ConfigError, match="resolution-toy v1 was not trained with --chain"):
        validate_model("resolution-toy", [fresh], root=chain_weights, chain=True)
    # the upstream model the card records must be the registered one
    moved = tmp_path / "weights"
    shutil.copytree(chain_weights, moved)
    card_path = moved / "rich-toy" / "v1" / "model.json"
    card = json.loads(card_path.read_text())
    card["chain"]["upstream"]["resolution"]["sha256"] = "0" * 64
    card_path.write_text(json.dumps(card))
    with pytest.raises(InputError, match=r"trained on resolution-toy v1 with sha256 0000"):
        validate_model("rich-toy", [fresh], root=moved, chain=True)


def test_categories_and_balanced_weights(tables, tmp_path):
    from lamarr_col.nn.train_model import _balance_weights

    t = _table(2000, 5)
    rows = SPECS["resolution"].rows(t)
    cats = SPECS["resolution"].categories(rows["x"])
    assert set(cats) == {"is_e", "is_mu", "is_pi", "is_k", "is_p"} | {
        "is_long",
        "is_upstream",
        "is_downstream",
    }
    species = np.abs(t["pid"][rows["index"]])
    np.testing.assert_array_equal(cats["is_k"], species == 321)
    np.testing.assert_array_equal(cats["is_long"], t["track_type"][rows["index"]] == 3)
    # 1/√(rows of the species × track type), mean 1
    w = _balance_weights(SPECS["resolution"], rows["x"])
    assert w.mean() == pytest.approx(1.0)
    ttype = t["track_type"][rows["index"]]
    a, b = (species == 321) & (ttype == 3), (species == 11) & (ttype == 4)
    assert np.unique(w[a]).size == 1
    assert w[b][0] / w[a][0] == pytest.approx(np.sqrt(a.sum() / b.sum()))
    _, card = train_model(
        SPECS["muon"],
        tables,
        arch="flow",
        output=tmp_path,
        version="v1",
        max_epochs=1,
        options=_TINY,
        balance=True,
    )
    assert card["training"]["balance"] is True
    assert "two_sample_by_category" in card["metrics"]["test"]
    with pytest.raises(ConfigError, match="--balance: the ismuon model is a classifier"):
        train_model(
            SPECS["ismuon"], tables, arch="mlp", output=tmp_path, version="v1", balance=True
        )


def test_bins_keep_enough_rows():
    from lamarr_col.nn.train_model import ROWS_PER_BIN, _bin_edges

    x = np.random.default_rng(0).normal(size=(100_000, len(SPECS["rich"].inputs)))
    assert [len(e) for e in _bin_edges(SPECS["rich"], x).values()] == [5, 5, 5]  # quartiles
    few = _bin_edges(SPECS["rich"], x[: 8 * ROWS_PER_BIN + 10])
    assert [len(e) for e in few.values()] == [3, 3, 3]  # halves: 8 bins of ≥ ROWS_PER_BIN
    assert [len(e) for e in _bin_edges(SPECS["rich"], x[:100]).values()] == [2, 2, 2]
    assert _bin_edges(SPECS["covariance"], x)  # generator-level p and η
