"""Developer tasks: ``nox -s lint tests build``; opt-in: ``bench``, ``slow``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests", "build"]
nox.options.default_venv_backend = "venv"

ROOT = Path(__file__).parent


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy."""
    session.install("ruff", "mypy", "-e", ".")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The default test suite (no slow or GPU tests)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """The slow tests too."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "slow or not slow", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark harness: writes JSON and PNG under benchmarks/results/."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Build sdist and wheel; fail if the wheel misses a subpackage or data file."""
    session.install("build")
    dist = ROOT / "dist"
    for old in dist.glob("*"):
        old.unlink()
    session.run("python", "-m", "build", "--outdir", str(dist))
    wheel = next(dist.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    check_wheel(names)
    session.log(f"{wheel.name}: {len(names)} files, all subpackages and data present")


def check_wheel(names: set[str]) -> None:
    """Every package directory and data file of the tree must be in the wheel, nothing else."""
    expected = set()
    mapping = {
        "lamarr_col": ROOT / "lamarr_col",
        "lamarr_col/kernels": ROOT / "kernels",
        "lamarr_col/weights": ROOT / "weights",
    }
    for prefix, folder in mapping.items():
        for path in folder.rglob("*"):
            if "__pycache__" in path.parts or path.is_dir() or path.name == "ruff.toml":
                continue
            if path.suffix in {".py", ".json", ".toml", ".typed", ".safetensors", ".csv"}:
                rel = path.relative_to(folder).as_posix()
                expected.add(f"{prefix}/{rel}")
    missing = sorted(expected - names)
    if missing:
        raise SystemExit(f"wheel is missing: {missing}")
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    if top != {"lamarr_col"}:
        raise SystemExit(
            f"wheel installs unexpected top-level names: {sorted(top - {'lamarr_col'})}"
        )
