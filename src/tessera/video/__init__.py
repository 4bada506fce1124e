"""Video: regions tracked over time, temporally consistent restoration, streams kept (see pipeline.py)."""
