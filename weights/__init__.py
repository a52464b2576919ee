"""Shipped model weights, their cards and the registry (installed as ``lamarr_col.weights``)."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

__all__ = ["registry"]


def registry() -> dict[str, Any]:
    """The index of shipped models (``registry.json``)."""
    return json.loads(files(__name__).joinpath("registry.json").read_text(encoding="utf-8"))
