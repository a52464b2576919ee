"""The flash simulation: steps that add reconstructed-level columns to batches of events."""
