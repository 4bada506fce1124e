"""Restoration: crop with context -> model -> mosaic-consistency projection -> feathered blend."""
