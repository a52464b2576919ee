"""The LHCb-like detector: condition sets, geometry, material, field map."""
