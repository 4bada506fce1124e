"""Mosaics: add them (pixelate), describe them (Grid, Region), find them (detect)."""
