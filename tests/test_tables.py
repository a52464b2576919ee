"""Training tables of the detailed simulation: rows, links to the tracks, residuals, file I/O."""

from __future__ import annotations

import dataclasses

import awkward as ak
import numpy as np
import pytest
import uproot

from lamarr_col.cli import main
from lamarr_col.detailed.pid import run_pid
from lamarr_col.detailed.simulate import assemble_outputs, run_tracking
from lamarr_col.detailed.tables import TABLE_COLUMNS, training_table, write_training_tables
from lamarr_col.detector import load_conditions
from lamarr_col.kernels.acceptance import TRACK_TYPES
from lamarr_col.rng import EventKeys
from lamarr_col.sources.gun import ParticleGun

CONDITIONS = load_conditions("lhcb-run3")


def _gun(n: int, seed: int) -> ak.Array:
    gun = ParticleGun.from_strings(
        species="pi+,pi-,K+,p~,mu-", p="flat:3000:50000", multiplicity="40"
    )
    return gun.generate(EventKeys(seed), np.arange(n))


@pytest.fixture(scope="module")
def batch() -> tuple[ak.Array, dict, ak.Array]:
    events = _gun(6, seed=21)
    out = run_tracking(events, CONDITIONS, seed=21)
    result, record = assemble_outputs(out, pid=run_pid(out, CONDITIONS, seed=21))
    n_gen = ak.to_numpy(ak.num(events.mcparticles, axis=1))
    out = dataclasses.replace(out, events=result)
    return training_table(out, record, CONDITIONS, n_gen), record, result


def test_one_row_per_charged_particle_with_every_column(batch):
    table, _, events = batch
    assert tuple(table) == TABLE_COLUMNS
    n = len(table["event"])
    assert n == int(ak.sum(events.mcparticles.charge != 0))
    assert all(len(v) == n for v in table.values())
    # generator particles first in each event; the simulation's additions are flagged
    assert set(np.unique(table["origin"])) <= {0, 1}
    assert (table["origin"] == 0).sum() == int(ak.sum(events.mcparticles[:, :40].charge != 0))


def test_track_types_agree_with_the_tracks_collection(batch):
    table, _, events = batch
    tracks = events.tracks
    for k in range(len(events)):
        rows = np.flatnonzero(table["event"] == events.event[k])
        linked = ak.to_numpy(tracks.mcparticle[k])
        types = ak.to_numpy(tracks.track_type[k])
        for r in rows:
            mine = types[linked == table["index"][r]]
            assert (table["track_type"][r] > 0) == (len(mine) > 0)
            assert table["n_tracks_of"][r] == len(mine)
            if len(mine):
                assert table["track_type"][r] in mine
    # a reconstructed particle's hits needed crossings: it was in the acceptance
    reco_long = table["track_type"] == TRACK_TYPES["LONG"]
    assert (table["acceptance_type"][reco_long] == TRACK_TYPES["LONG"]).all()
    assert np.isnan(table["dx"][table["track_type"] == 0]).all()


def test_long_track_residuals_are_small_and_centred(batch):
    table, _, _ = batch
    sel = (table["track_type"] == TRACK_TYPES["LONG"]) & (table["origin"] == 0)
    assert sel.sum() > 50
    for name, scale in (
        ("dx", 0.1),
        ("dy", 0.1),
        ("dtx", 5e-4),
        ("dty", 5e-4),
        ("dp_over_p", 0.02),
    ):
        v = table[name][sel]
        assert abs(np.median(v)) < 0.2 * scale, name
        assert 1.4826 * np.median(np.abs(v - np.median(v))) < scale, name
    assert (table["chi2ndof"][sel] > 0).all()
    assert (table["cov_qop_qop"][sel] > 0).all()


def test_write_tables_streams_batches_and_keeps_rows_on_error(tmp_path):
    out = tmp_path / "t.root"
    batches = [_gun(2, seed=s) for s in (1, 2)]
    n_events, n_rows = write_training_tables(iter(batches), out, CONDITIONS, seed=1)
    assert n_events == 4
    tree = uproot.open(out)["training"]
    assert tree.num_entries == n_rows
    assert set(tree.keys()) == set(TABLE_COLUMNS)

    def failing():
        yield batches[0]
        raise RuntimeError("source broke")

    bad = tmp_path / "bad.root"
    with pytest.raises(RuntimeError) as err:
        write_training_tables(failing(), bad, CONDITIONS, seed=1)
    assert "kept in" in " ".join(err.value.__notes__)
    assert not bad.exists()
    kept = uproot.open(tmp_path / "bad.root.partial")["training"]
    assert kept.num_entries > 0


def test_cli_tables(tmp_path, capsys):
    out = tmp_path / "tables.root"
    code = main(
        [
            "tables",
            "--source",
            "gun",
            "--species",
            "pi+",
            "--multiplicity",
            "20",
            "-n",
            "3",
            "-o",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    assert "rows (3 events)" in capsys.readouterr().out
    assert uproot.open(out)["training"].num_entries > 0
    assert main(["tables", "-n", "1", "-o", str(tmp_path / "x.parquet")]) == 2
    assert "written as ROOT" in capsys.readouterr().err
    # a missing directory is an error, not created
    missing = tmp_path / "nowhere" / "t.root"
    assert main(["tables", "--source", "gun", "-n", "1", "-o", str(missing), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not missing.parent.exists()


def test_pid_columns_follow_the_track(batch):
    table, _, _ = batch
    none = table["track_type"] == 0
    assert none.any()
    assert (~none).any()
    assert np.all(np.isnan(table["pid_k"][none]))
    assert not table["is_muon"][none].any()
    assert not table["rich_used_r1"][none].any()
    # reconstructed long tracks with RICH information carry the tracks' DLLs
    long = table["track_type"] == 3
    with_rich = long & (table["rich_used_r1"] | table["rich_used_r2"])
    assert with_rich.any()
    assert np.all(np.isfinite(table["rich_dll_k"][with_rich]))
    assert np.array_equal(table["pid_k"][with_rich], table["rich_dll_k"][with_rich])
