from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.event import pdg_table
from lamarr_col.sources.ntuple import ColumnMap, NtupleSource


def _foreign_file(path, *, with_unknown=False):
    """A user's ntuple: GeV and cm, own branch names, jagged particle branches."""
    pid = ak.Array([[211, -321], [], [2212, 22, 99999999 if with_unknown else 11]])
    px = ak.Array([[0.1, -0.2], [], [1.0, 0.5, 0.01]])
    py = ak.Array([[0.0, 0.3], [], [0.2, 0.1, 0.02]])
    pz = ak.Array([[10.0, 20.0], [], [50.0, 5.0, 1.0]])
    vz = ak.Array([[1.0, 1.0], [], [-2.0, -2.0, -2.0]])
    data = {
        "evt": np.array([100, 101, 102]),
        "P": ak.zip({"ID": pid, "PX": px, "PY": py, "PZ": pz}),
        "vz": ak.zip({"cm": vz}),
    }
    with uproot.recreate(path) as f:
        tree = f.mktree(
            "MCTuple", {k: (v.dtype if k == "evt" else v.type.content) for k, v in data.items()}
        )
        tree.extend(data)
    return pid, px, py, pz, vz


def _toml(tmp_path, text):
    path = tmp_path / "map.toml"
    path.write_text(text, encoding="utf-8")
    return path


MAP = """
tree = "MCTuple"
[units]
momentum = "GeV"
length = "cm"
[event]
event = "evt"
[mcparticles]
pid = "P_ID"
px = "P_PX"
py = "P_PY"
pz = "P_PZ"
vz = "vz_cm"
"""


def test_foreign_ntuple_with_column_map(tmp_path):
    pid, px, _, _, vz = _foreign_file(tmp_path / "user.root")
    source = NtupleSource(tmp_path / "user.root", ColumnMap.from_toml(_toml(tmp_path, MAP)))
    events = ak.concatenate(list(source.batches(None, 2)))
    assert events.event.tolist() == [100, 101, 102]
    m = events.mcparticles
    assert ak.all(m.pid == pid)
    np.testing.assert_allclose(ak.flatten(m.px).to_numpy(), ak.flatten(px).to_numpy() * 1000)
    np.testing.assert_allclose(ak.flatten(m.vz).to_numpy(), ak.flatten(vz).to_numpy() * 10)
    mass = pdg_table().mass_of(ak.flatten(m.pid).to_numpy())
    np.testing.assert_allclose(ak.flatten(m.mass).to_numpy(), mass)
    p2 = ak.flatten(m.px**2 + m.py**2 + m.pz**2).to_numpy()
    np.testing.assert_allclose(ak.flatten(m.e).to_numpy(), np.sqrt(p2 + mass**2))
    assert ak.all(m.mother == -1)
    assert ak.all(np.isnan(m.end_vz))
    assert events.n_collisions.tolist() == [1, 1, 1]


def test_unknown_pid_dropped_and_counted(tmp_path):
    _foreign_file(tmp_path / "user.root", with_unknown=True)
    source = NtupleSource(tmp_path / "user.root", ColumnMap.from_toml(_toml(tmp_path, MAP)))
    events = ak.concatenate(list(source.batches(None, 10)))
    assert ak.num(events.mcparticles).tolist() == [2, 0, 2]
    assert source.stats.unknown_pids == {99999999: 1}


def test_missing_branch_suggests_names(tmp_path):
    _foreign_file(tmp_path / "user.root")
    cmap = ColumnMap.from_toml(_toml(tmp_path, MAP.replace('"P_PX"', '"P_PXX"')))
    with pytest.raises(InputError, match=r"no branch 'P_PXX' in tree 'MCTuple'; did you mean P_PX"):
        list(NtupleSource(tmp_path / "user.root", cmap).batches(None, 10))


def test_missing_tree_lists_content(tmp_path):
    _foreign_file(tmp_path / "user.root")
    with pytest.raises(InputError, match=r"no tree 'events'; it holds \['MCTuple'\]"):
        list(NtupleSource(tmp_path / "user.root").batches(None, 10))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            '[units]\nmomentum = "keV"\n[mcparticles]\npid="a"\npx="b"\npy="c"\npz="d"',
            "unknown momentum unit",
        ),
        ('[mcparticles]\npid="a"\npx="b"', r"fields \['py', 'pz'\] are required"),
        ('[mcparticles]\npid="a"\npx="b"\npy="c"\npz="d"\nspin="s"', "unknown mcparticles field"),
        ("[[broken", "not valid TOML"),
        ("colour = 1\n", "unknown key"),
    ],
)
def test_bad_column_maps(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        ColumnMap.from_toml(_toml(tmp_path, text))


def test_corrupt_and_empty_files(tmp_path):
    empty = tmp_path / "empty.root"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        NtupleSource(empty)
    bad = tmp_path / "bad.root"
    bad.write_bytes(b"root" + b"\x00" * 50)
    with pytest.raises(InputError, match=r"bad\.root is not a readable ROOT file"):
        list(NtupleSource(bad).batches(None, 10))
    with pytest.raises(InputError, match="does not exist"):
        NtupleSource(tmp_path / "nope.root")
