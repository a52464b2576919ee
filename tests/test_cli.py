from __future__ import annotations

import json
import subprocess
import sys

import awkward as ak
import pytest
import uproot

from lamarr_col.cli import main
from lamarr_col.io.writers import open_writer


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_generate_pythia_writes_root_with_metadata(tmp_path, capsys):
    out = tmp_path / "ev.root"
    code, stdout, _ = _run(
        capsys,
        "generate",
        "--events",
        "3",
        "--seed",
        "4",
        "--batch-size",
        "2",
        "--pileup",
        "2",
        "-o",
        str(out),
        "--no-progress",
    )
    assert code == 0
    assert "wrote 3 events" in stdout
    assert "events/s" in stdout
    with uproot.open(out) as f:
        assert f["events"].num_entries == 3
        meta = json.loads(str(f["metadata"]))
    assert meta["seed"] == 4
    assert meta["source"]["preset"] == "minbias"
    assert meta["source"]["pileup_nu"] == 2
    assert meta["summary"]["events"] == 3
    assert meta["version"]


def test_generate_reads_its_own_output(tmp_path, capsys, batch_factory):
    src = tmp_path / "in.root"
    with open_writer(src, {}) as w:
        w.write(batch_factory(3, 6))
    dst = tmp_path / "out.parquet"
    code, stdout, _ = _run(
        capsys, "generate", "--source", str(src), "-o", str(dst), "--no-progress"
    )
    assert code == 0
    assert ak.array_equal(ak.from_parquet(dst), batch_factory(3, 6), equal_nan=True)
    assert "wrote 6 events" in stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--events", "0"], "--events: must be at least 1, got 0"),
        (["--events", "x"], "expected an integer"),
        (["--batch-size", "-3"], "--batch-size: must be at least 1"),
        (["--source", "nofile.hepmc"], "input file nofile.hepmc does not exist"),
        (["--source", "gunn"], "a source is 'gun', 'pythia' or a file path"),
        (["--preset", "higgs"], "unknown Pythia preset 'higgs'"),
        (["--pileup", "-1"], "--pileup: pile-up nu must be in (0, 100]"),
        (["--luminous-region", "sigma_q=3"], "unknown key(s) ['sigma_q']"),
        (["--luminous-region", "sigma_z"], "expected KEY=VALUE"),
        (["--format", "csv"], "invalid choice: 'csv'"),
        (["--pythia-cmnd", "missing.cmnd"], "--pythia-cmnd: cannot read missing.cmnd"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    try:
        code = main(["generate", "-o", str(tmp_path / "x.root"), "--no-progress", *argv])
    except SystemExit as exc:  # argparse's own checks
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "x.root").exists()


def test_corrupt_input_keeps_written_events(tmp_path, capsys, batch_factory):
    src = tmp_path / "in.root"
    with open_writer(src, {}) as w:
        w.write(batch_factory(1, 4))
    # damage the file after its header: reading fails at the first basket
    data = bytearray(src.read_bytes())
    data[400:-2000] = b"\x00" * len(data[400:-2000])
    src.write_bytes(bytes(data))
    code, _, err = _run(
        capsys, "generate", "--source", str(src), "-o", str(tmp_path / "o.root"), "--no-progress"
    )
    assert code == 2
    assert str(src) in err
    assert not (tmp_path / "o.root").exists()


def test_help_and_version():
    done = subprocess.run(
        [sys.executable, "-m", "lamarr_col.cli", "generate", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--source" in done.stdout
    assert "HepMC" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "lamarr_col.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("lamarr-col ")


def _gun(tmp_path, name, *extra):
    out = tmp_path / name
    argv = [
        "generate",
        "--source",
        "gun",
        "--species",
        "Lambda_b0",
        "--p",
        "flat:20000:200000",
        "--decay",
        "Lambda_b0 -> (Lambda_c+ -> p+ K- pi+) mu- anti-nu_mu",
        "--multiplicity",
        "poisson:1.5",
        "--events",
        "40",
        "-o",
        str(out),
        "--no-progress",
        *extra,
    ]
    assert main(argv) == 0
    return uproot.open(out)["events"].arrays()


def test_same_seed_same_events_whatever_the_batch_size(tmp_path, capsys):
    whole = _gun(tmp_path, "a.root", "--seed", "5", "--batch-size", "40")
    split = _gun(tmp_path, "b.root", "--seed", "5", "--batch-size", "7")
    assert ak.array_equal(whole, split, equal_nan=True)
    tail = _gun(tmp_path, "c.root", "--seed", "5", "--batch-size", "3", "--first-event", "30")
    assert ak.array_equal(whole[30:], tail[:10], equal_nan=True)
    other = _gun(tmp_path, "d.root", "--seed", "6")
    assert not ak.array_equal(whole.mcparticles_px, other.mcparticles_px)


def test_truncated_hepmc_keeps_complete_events(tmp_path, capsys):
    import numpy as np

    from lamarr_col.sources.hepmc_write import random_collision, write_hepmc

    rng = np.random.default_rng(3)
    collisions = [random_collision(rng, k, 20) for n in (3, 2, 4, 1) for k in range(1, n + 1)]
    full = write_hepmc(tmp_path / "full.hepmc", collisions, format="HepMC3", momentum_unit="MEV")
    data = full.read_bytes()
    cut = tmp_path / "cut.hepmc"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    out = tmp_path / "o.root"
    code, _, err = _run(
        capsys,
        "generate",
        "--source",
        str(cut),
        "-o",
        str(out),
        "--no-progress",
        "--hepmc-grouping",
        "gauss",
    )
    assert code == 2
    assert err.count("\n") == 1
    assert str(cut) in err
    assert "kept in" in err
    assert not out.exists()
    partial = uproot.open(tmp_path / "o.root.partial")["events"].arrays()
    assert 0 < len(partial) < 4
    code, _, _ = _run(capsys, "generate", "--source", str(full), "-o", str(out), "--no-progress")
    reference = uproot.open(out)["events"].arrays()
    assert ak.array_equal(reference[: len(partial)], partial, equal_nan=True)


def test_conditions_show_calibrate_and_residuals(tmp_path, capsys):
    code, out, _ = _run(capsys, "conditions", "show", "lhcb-run2", "--polarity", "MagUp")
    assert code == 0
    assert "lhcb-run2 (MagUp)" in out
    assert "M1" in out
    user = tmp_path / "upgrade.toml"
    user.write_text(
        'base = "lhcb-run3"\n[magnet]\nb0 = 1.2\n[tracking.UT.layers.UTe]\nz = 2700.0\n',
        encoding="utf-8",
    )
    code, out, _ = _run(capsys, "conditions", "show", str(user))
    assert code == 0
    assert "2700" in out
    assert "-4.572 T·m" in out  # 1.2 T × 3.81 m, MagDown
    code, out, _ = _run(capsys, "conditions", "calibrate", str(user))
    assert code == 0
    assert out.startswith("[single_kick]")
    assert '"MagUp.kick_x"' in out
    code, out, _ = _run(capsys, "conditions", "residuals")
    assert code == 0
    rows = [line for line in out.splitlines() if line.strip().startswith("100–200")]
    assert len(rows) == 3  # first and last T plane, ECAL
    code, _, err = _run(capsys, "conditions", "show", str(tmp_path / "missing.toml"))
    assert code == 2
    assert "does not exist" in err
