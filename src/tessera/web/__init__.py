"""A local web page and a REST API over the same library calls the CLI makes (``tessera serve``).

Importing this package does no work; :func:`create_app` needs the ``web`` extra (FastAPI,
python-multipart) and ``tessera serve`` also needs uvicorn.

Restoration is imagination, not recovery: every restored result names its synthesized-pixel mask
and carries the notice, on the page and in the PNG.
"""

from __future__ import annotations

from tessera.web.config import WebConfig

__all__ = ["WebConfig", "create_app"]


def create_app(config: WebConfig | None = None):
    """The FastAPI application (page at ``/``, API under ``/api``, OpenAPI docs at ``/docs``)."""
    from tessera.web.app import create_app as _create

    return _create(config or WebConfig())
