"""`tessera serve`: the local web page and REST API (needs the `web` extra)."""

from __future__ import annotations

import typer

from tessera.cli.app import app, console
from tessera.restore.marking import NOTICE


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Anything but loopback exposes the server to your network."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port (0 = any free port)."),
    max_upload_mb: float = typer.Option(50.0, "--max-upload-mb", min=0.001, help="Largest request body, in MiB."),
    max_pixels: int = typer.Option(40_000_000, "--max-pixels", min=1, help="Largest image decoded (width x height)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Images processed at the same time."),
    queue: int = typer.Option(8, "--queue", min=0, help="Requests that may wait for a worker; beyond that: 503 + Retry-After."),
    jobs: int = typer.Option(32, "--jobs", min=1, help="Jobs kept (with their results) at most."),
    job_ttl: float = typer.Option(3600.0, "--job-ttl", min=1.0, help="Seconds a finished job's result is kept."),
    allow_host: list[str] = typer.Option([], "--allow-host", help="Another host name the page may be reached by (Host/Origin check); repeatable."),
) -> None:
    """Serve the web page and the REST API (OpenAPI docs at /docs).

    Restored pixels are imagined, not recovered: they are not the hidden original.
    """
    try:
        import uvicorn

        from tessera.web import WebConfig, create_app
    except ImportError as exc:
        raise typer.BadParameter(f"the web server needs the 'web' extra: pip install 'tessera[web]' ({exc})") from None
    try:
        cfg = WebConfig(host=host, port=port, max_upload_mb=max_upload_mb, max_pixels=max_pixels, workers=workers,
                        queue=queue, jobs=jobs, job_ttl=job_ttl, allowed_hosts=tuple(allow_host))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if cfg.public:
        console.print(
            f"[yellow]warning:[/] listening on {host}, not loopback: anyone who can reach this machine on port "
            f"{port} can use the server (there is no login). Use the default --host 127.0.0.1 unless you mean it.",
            highlight=False,
        )
    shown = f"[{host}]" if ":" in host else host
    console.print(f"Tessera at http://{shown}:{port}/ (API docs at /docs). {NOTICE}", highlight=False)
    uvicorn.run(create_app(cfg), host=host, port=port, log_level="warning", server_header=False)
