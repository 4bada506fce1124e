"""Training: image folders -> degraded triples (data), losses, one step per model (recipes), fit (loop)."""
