"""Reference detailed simulation: particles stepped through the detector material."""
