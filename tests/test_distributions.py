"""1-D distributions: inverse CDFs, bounds, means, files and the option-string parser."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lamarr_col.errors import ConfigError
from lamarr_col.rng import EventKeys
from lamarr_col.sources.distributions import (
    Exponential,
    Fixed,
    Flat,
    Histogram,
    parse_distribution,
)

N = 200_000


@pytest.fixture(scope="module")
def u() -> np.ndarray:
    return EventKeys(11).uniform("gun", np.arange(N), 0)


def _mean_ok(x: np.ndarray, expected: float) -> None:
    assert abs(x.mean() - expected) < 5 * x.std() / math.sqrt(len(x)) + 1e-12


def test_flat(u: np.ndarray) -> None:
    d = Flat(2.0, 5.0)
    x = d.ppf(u)
    assert x.min() >= 2.0
    assert x.max() <= 5.0
    _mean_ok(x, 3.5)
    assert d.expectation() == 3.5


def test_exponential(u: np.ndarray) -> None:
    d = Exponential(5000.0)
    x = d.ppf(u)
    assert x.min() >= 0
    _mean_ok(x, 5000.0)


def test_truncated_exponential(u: np.ndarray) -> None:
    d = Exponential(5000.0, 1000.0, 100_000.0)
    x = d.ppf(u)
    assert x.min() >= 1000.0
    assert x.max() <= 100_000.0
    _mean_ok(x, d.expectation())
    # memoryless: the mean above lo is close to lo + mean when hi is far
    assert d.expectation() == pytest.approx(6000.0, rel=1e-6)


def test_narrow_truncated_exponential_stays_in_window(u: np.ndarray) -> None:
    x = Exponential(1e6, 10.0, 10.001).ppf(u)
    assert np.all((x >= 10.0) & (x <= 10.001))


def test_fixed(u: np.ndarray) -> None:
    x = Fixed(10_000.0).ppf(u)
    assert np.all(x == 10_000.0)


def test_histogram_fractions_and_empty_bins(u: np.ndarray) -> None:
    h = Histogram(np.array([0.0, 1.0, 2.0, 4.0]), np.array([1.0, 0.0, 3.0]))
    x = h.ppf(u)
    assert np.all((x >= 0) & (x <= 4))
    assert not np.any((x > 1.0) & (x < 2.0))
    assert np.mean(x < 1.0) == pytest.approx(0.25, abs=0.005)
    _mean_ok(x, h.expectation())
    assert h.support == (0.0, 4.0)


def test_histogram_from_csv(tmp_path, u: np.ndarray) -> None:
    path = tmp_path / "pt.csv"
    path.write_text("# low_edge,content\n0,1\n1000,2\n\n2000, 1\n4000\n")
    d = parse_distribution(f"hist:{path}", "pt")
    assert isinstance(d, Histogram)
    np.testing.assert_array_equal(d.edges, [0, 1000, 2000, 4000])
    x = d.ppf(u)
    assert np.mean((x >= 1000) & (x < 2000)) == pytest.approx(0.5, abs=0.005)
    assert d.describe() == f"hist:{path}"


def test_histogram_from_root(tmp_path, u: np.ndarray) -> None:
    uproot = pytest.importorskip("uproot")
    path = tmp_path / "h.root"
    with uproot.recreate(path) as f:
        f["h_pt"] = (np.array([0.0, 4.0, 4.0]), np.array([0.0, 1.0, 2.0, 3.0]))
    d = parse_distribution(f"hist:{path}:h_pt", "pt")
    x = d.ppf(u)
    assert x.min() >= 1.0
    assert x.max() <= 3.0
    with pytest.raises(ConfigError, match="no histogram"):
        parse_distribution(f"hist:{path}:nope", "pt")


@pytest.mark.parametrize(
    ("text", "cls"),
    [
        ("flat:2:5", Flat),
        ("exp:5000", Exponential),
        ("exp:5000:1000:100000", Exponential),
        ("exp:5000:1000:inf", Exponential),
        ("fixed:10000", Fixed),
        ("FLAT: 0 : 6.283185307179586", Flat),
    ],
)
def test_parse_round_trip(text: str, cls: type) -> None:
    d = parse_distribution(text)
    assert isinstance(d, cls)
    assert parse_distribution(d.describe()) == d


@pytest.mark.parametrize(
    "text",
    [
        "",
        "gauss:1:2",
        "flat:5",
        "flat:5:2",
        "flat:a:b",
        "exp:-1",
        "exp:1:2",
        "exp:1:5:2",
        "fixed:nan",
        "fixed",
        "hist:",
        "hist:/no/such/file.csv",
        "hist:file.root",
    ],
)
def test_bad_strings_name_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^eta: "):
        parse_distribution(text, "eta")


def test_bad_string_lists_forms() -> None:
    with pytest.raises(ConfigError, match=r"flat:LO:HI.*exp:MEAN.*hist:FILE\.root:HISTNAME"):
        parse_distribution("uniform:0:1", "phi")


def test_bad_csv(tmp_path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("0,1\n1,2\n")
    with pytest.raises(ConfigError, match="upper edge"):
        parse_distribution(f"hist:{path}", "p")
    path.write_text("0,1\n2,1\n1\n")
    with pytest.raises(ConfigError, match="increasing"):
        parse_distribution(f"hist:{path}", "p")
