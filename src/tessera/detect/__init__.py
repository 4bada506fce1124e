"""Finding things in images: mosaicked regions (mosaics.py: segmentation net + grid analysis) and
faces (faces.py). The maths of mosaics themselves lives in :mod:`tessera.mosaic`."""
