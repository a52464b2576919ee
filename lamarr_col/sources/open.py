"""Choosing a source from what the user names: ``gun``, ``pythia`` or a file path.

Files are recognised by their content, never by their name: ROOT and Parquet by their magic
bytes, anything else is tried as HepMC2/HepMC3 ASCII.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lamarr_col.errors import InputError
from lamarr_col.sources.base import Source

__all__ = ["GENERATORS", "file_kind", "open_source"]

GENERATORS = ("gun", "pythia")


def file_kind(path: Path) -> str:
    """``"root"``, ``"parquet"`` or ``"hepmc"`` from the first bytes of ``path``."""
    if not path.exists():
        msg = f"input file {path} does not exist (a source is 'gun', 'pythia' or a file path)"
        raise InputError(msg)
    if path.is_dir():
        msg = f"input {path} is a directory, not a file"
        raise InputError(msg)
    with path.open("rb") as f:
        head = f.read(4)
    if head == b"root":
        return "root"
    if head == b"PAR1":
        return "parquet"
    return "hepmc"


def open_source(spec: str, **options: Any) -> Source:
    """The source named by ``spec`` with its options (keyword arguments of its class).

    ``spec`` is ``"gun"`` (options of :meth:`ParticleGun.from_strings`), ``"pythia"``
    (:class:`PythiaSource`) or a path (:class:`HepMCSource` or :class:`NtupleSource`).
    """
    if spec == "gun":
        from lamarr_col.sources.gun import ParticleGun

        return ParticleGun.from_strings(**options)
    if spec == "pythia":
        from lamarr_col.sources.pythia import PythiaSource

        return PythiaSource(**options)
    path = Path(spec)
    kind = file_kind(path)
    if kind == "hepmc":
        from lamarr_col.sources.hepmc import HepMCSource

        return HepMCSource(path, **options)
    from lamarr_col.sources.ntuple import NtupleSource

    return NtupleSource(path, **options)
