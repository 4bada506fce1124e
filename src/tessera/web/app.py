"""The FastAPI application: the page at ``/``, the API under ``/api``, OpenAPI docs at ``/docs``.

Only HTTP lives here: parse a request, save its uploads under a server-made folder, queue the
matching function of :mod:`tessera.web.tasks` (which calls the library as the CLI does) and answer.
Safety, from the outside in (:class:`Guard`): the Host and Origin headers must name this server
(DNS rebinding), the body is capped, image work waits in a bounded queue (503 + Retry-After when
full), images are capped in pixels from their header, and every temporary folder is removed when
its request ends, failed or not (job folders when the job is deleted or expires).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

import tessera
from tessera.mosaic.region import SAMPLING_HELP, sampling_help
from tessera.web import tasks
from tessera.web.config import WebConfig
from tessera.web.work import Busy, Cancelled, Job, JobStore, WorkQueue

WORK_PATHS = frozenset({"/api/detect", "/api/restore", "/api/pixelate", "/api/anonymize", "/api/jobs"})
CHUNK = 1 << 20
NO_ANONYMIZE = ("anonymize is not available in this installation (tessera.anonymize is missing); "
                "use /api/pixelate with a mask or boxes")


class TooLarge(HTTPException):
    """The request body is over the cap (raised while it is read, so nothing more is read)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit / 2**20:g} MiB (--max-upload-mb)")


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Guard:
    """Pure ASGI middleware in front of every route: Host/Origin check, body cap, early 503."""

    def __init__(self, app, config: WebConfig, queue: WorkQueue) -> None:
        self.app = app
        self.config = config
        self.queue = queue

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await refusal(scope, receive, send)
        limit = self.config.max_upload_bytes
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLarge(limit)
            return message

        started = False

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except TooLarge as exc:  # raised outside a route's handlers
            if started:
                raise
            await _json_error(413, exc.detail)(scope, receive, send)

    def refusal(self, scope, headers: dict[str, str]) -> Response | None:
        host = headers.get("host", "")
        hostname = urlsplit(f"//{host}").hostname if host else None
        if not hostname or not self.config.host_allowed(hostname):
            return _json_error(
                403,
                f"refused: the Host header {host!r} is not this server's name (a guard against DNS rebinding); "
                "start tessera serve with --allow-host NAME to accept it",
            )
        origin = headers.get("origin")
        if origin is not None:
            parts = urlsplit(origin)
            if origin == "null" or parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
                return _json_error(403, f"refused: a page from {origin!r} may not call this server (cross-origin request)")
        if scope["type"] == "http":
            length = headers.get("content-length")
            if length is not None:
                try:
                    n = int(length)
                except ValueError:
                    return _json_error(400, "malformed Content-Length header")
                if n > self.config.max_upload_bytes:
                    return _json_error(413, TooLarge(self.config.max_upload_bytes).detail)
            if scope.get("method") == "POST" and scope.get("path") in WORK_PATHS and self.queue.full():
                retry = self.queue.retry_after()
                return _json_error(503, "the server is busy; retry later", {"Retry-After": str(retry)})
        return None


# ------------------------------------------------------------------------------------------ helpers


def _save(upload: UploadFile | None, path: Path) -> None:
    """Copy an upload into the work folder in chunks (the client's file name is not used)."""
    if upload is None:
        return
    upload.file.seek(0)
    with open(path, "xb") as out:
        shutil.copyfileobj(upload.file, out, CHUNK)


def _data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64," + base64.b64encode(data).decode("ascii")


def _is_upload(value: Any) -> bool:
    return value is not None and hasattr(value, "file") and hasattr(value, "filename")


def _status_for(exc: BaseException) -> int:
    from tessera.io.image import ImageReadError, MaskError

    if isinstance(exc, ImageReadError) and "limit" in exc.reason and "pixels" in exc.reason:
        return 413
    if isinstance(exc, (tasks.BadInput, ImageReadError, MaskError, ValueError)):
        return 400
    return 500


def _message(exc: BaseException) -> str:
    from tessera.io.image import ImageIOError
    from tessera.io.video import VideoError

    if isinstance(exc, (ImageIOError, VideoError)):  # the path is a server-made temporary name: say which upload
        return f"{exc.path.name}: {exc.reason}"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ------------------------------------------------------------------------------------------ the app


def create_app(config: WebConfig) -> FastAPI:
    queue = WorkQueue(config.workers, config.queue)
    root = Path(tempfile.mkdtemp(prefix="tessera-web-"))
    store = JobStore(root, config.jobs, config.job_ttl)
    static = resources.files("tessera.web") / "static"

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        try:
            yield
        finally:
            queue.shutdown()
            shutil.rmtree(root, ignore_errors=True)

    app = FastAPI(
        title="Tessera",
        version=tessera.__version__,
        description=(
            "Find, restore and add mosaics (pixelation), blurs and holes in images, over the same library "
            "calls as the `tessera` command line. **Restoration is imagination, not recovery**: every "
            "restored PNG names its synthesized-pixel mask (text chunk `tessera:synthesized-mask`) and "
            "carries the notice. Errors are JSON: `{\"error\": message}`."
        ),
        lifespan=lifespan,
        docs_url=None if _swagger_assets() else "/docs",  # served below from the package, not a CDN
        redoc_url=None,
    )
    app.state.config = config
    app.state.queue = queue
    app.state.jobs = store
    app.state.root = root
    app.add_middleware(Guard, config=config, queue=queue)

    # -------------------------------------------------------------------------------- errors

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException):
        return _json_error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return _json_error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(Busy)
    async def _busy(_request: Request, exc: Busy):
        return _json_error(503, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(tasks.BadInput)
    async def _bad_input(_request: Request, exc: tasks.BadInput):
        return _json_error(400, str(exc))

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception):
        return _json_error(_status_for(exc), _message(exc))

    # -------------------------------------------------------------------------------- running work

    def new_folder() -> Path:
        folder = root / f"req-{uuid.uuid4().hex}"
        folder.mkdir(mode=0o700)
        return folder

    def in_folder(fn: Callable, folder: Path, params: Any, outputs: tuple[str, ...]):
        """Runs on a worker: the task, then its output files read back; the folder always removed."""
        try:
            info = fn(folder, params, config.max_pixels)
            return info, {name: (folder / name).read_bytes() for name in outputs if (folder / name).exists()}
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    async def run_now(fn: Callable, params: Any, uploads: dict[str, UploadFile | None], outputs: tuple[str, ...]):
        """Save the uploads, queue the work, wait for it. The folder goes whatever happens: the
        worker removes it, or this request does when the work never started."""
        folder = new_folder()
        try:
            for name, upload in uploads.items():
                await run_in_threadpool(_save, upload, folder / name)
            fut: Future = queue.submit(in_folder, fn, folder, params, outputs)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        fut.add_done_callback(lambda f: shutil.rmtree(folder, ignore_errors=True) if f.cancelled() else None)
        try:
            return await asyncio.wrap_future(fut)
        except Exception as exc:
            raise HTTPException(_status_for(exc), _message(exc)) from exc

    async def image_work(fn: Callable, params: Any, image: UploadFile, mask: UploadFile | None, *, synthesized: bool):
        """A synchronous image request: the result PNG, or JSON with both images (``with_mask``)."""
        if tasks.looks_like_video(image.filename, image.content_type):
            raise tasks.BadInput("videos run as jobs: POST /api/jobs with task=... and video=@FILE, then follow GET /api/jobs/ID")
        uploads = {tasks.IMAGE: image, tasks.MASK: mask if _is_upload(mask) else None}
        done, files = await run_now(fn, params, uploads, (tasks.RESULT, tasks.RESULT_MASK))
        return _image_answer(done, files, params.with_mask, synthesized=synthesized)

    def run_job(job: Job, fn: Callable, params: Any, outputs: Callable[[dict], dict[str, tuple[str, str, str]]]) -> None:
        """Runs on a worker: the task with progress reports; its outputs (``outputs(info)``: name ->
        (file, media type, download name)) kept in the job's folder, every other file removed."""
        job.status, job.started = "running", time.time()
        try:
            if job.cancel_requested:
                raise Cancelled("cancelled")
            info = fn(job.folder, params, config.max_pixels, job.report)
            if job.cancel_requested:
                raise Cancelled("cancelled")
            if job.task == "detect":
                (job.folder / tasks.RESULT_JSON).write_text(json.dumps(info))
            job.info = info if isinstance(info, dict) else {}
            for key, (filename, media, download) in outputs(job.info).items():
                if (job.folder / filename).exists():
                    job.outputs[key] = (job.folder / filename, media, download)
            job.progress, job.status = 1.0, "done"
        except Cancelled:
            job.status = "cancelled"
        except Exception as exc:  # noqa: BLE001 - every failure becomes the job's error message
            job.status, job.error = "failed", _message(exc)
        finally:
            job.finished = time.time()
            for name in (tasks.IMAGE, tasks.MASK, tasks.VIDEO):
                (job.folder / name).unlink(missing_ok=True)
            if job.cancel_requested:
                store.remove(job)

    # -------------------------------------------------------------------------------- page and info

    @app.get("/", include_in_schema=False)
    async def page():
        return Response((static / "index.html").read_bytes(), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    assets = _swagger_assets()
    if assets is not None:  # Swagger UI from the swagger-ui-bundle package: /docs works offline
        from fastapi.openapi.docs import get_swagger_ui_html

        app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        async def docs():
            return get_swagger_ui_html(
                openapi_url=app.openapi_url or "/openapi.json", title="Tessera API",
                swagger_js_url="/docs-assets/swagger-ui-bundle.js", swagger_css_url="/docs-assets/swagger-ui.css",
                swagger_favicon_url="/docs-assets/favicon-32x32.png",
            )

    @app.get("/api/info", summary="Models, actions and limits of this server")
    async def info() -> dict:
        from tessera.restore.pipeline import DEFAULT_MODEL, model_names

        return {
            "version": tessera.__version__,
            "models": model_names(),
            "samplings": dict(SAMPLING_HELP),
            "default_model": "default",
            "default_is": DEFAULT_MODEL,
            "actions": {"detect": True, "restore": True, "pixelate": True, "blur": True, "solid": True,
                        "anonymize": tasks.anonymize_available(), "video": tasks.video_available()},
            "limits": {"max_upload_bytes": config.max_upload_bytes, "max_pixels": config.max_pixels,
                       "workers": config.workers, "queue": config.queue},
            "busy": queue.busy,
            "notice": tasks.notice(),
        }

    # -------------------------------------------------------------------------------- image work

    @app.post("/api/detect", summary="Find mosaicked regions: box, cell size, phase, sampling, score")
    async def detect(
        image: UploadFile = File(..., description="The image (any format Pillow reads)."),
        min_area: int = Form(64, description="Smallest region reported, in pixels."),
        sensitivity: float = Form(0.5, description="0..1; higher finds fainter regions (and more false ones)."),
        with_mask: bool = Form(False, description="Also return the regions' mask as a PNG data URL (white = mosaic)."),
    ) -> dict:
        params = tasks.DetectParams(min_area=min_area, sensitivity=sensitivity, with_mask=with_mask)
        doc, files = await run_now(tasks.run_detect, params, {tasks.IMAGE: image}, (tasks.RESULT_MASK,))
        if with_mask and tasks.RESULT_MASK in files:
            doc["mask"] = _data_url(files[tasks.RESULT_MASK])
        return doc

    @app.post(
        "/api/restore",
        summary="Restore mosaicked, blurred or missing regions (imagined, not recovered)",
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "application/json": {}},
                         "description": "The restored PNG (or JSON with both images as data URLs when with_mask)."}},
    )
    async def restore(
        image: UploadFile = File(..., description="The image to restore."),
        mask: UploadFile | None = File(None, description="Optional mask image (white = restore), same size; else mosaics are detected."),
        model: str = Form("default", description="A model name from GET /api/info."),
        sampling: str = Form("auto", description="What each mosaic cell holds: 'auto' (projected under mean and centre, the one the "
                             f"restoration agrees with kept), or the tool's own when known: {sampling_help()}."),
        kind: str = Form("auto", description="What hides the pixels: auto, mosaic, blur or hole."),
        cell: str | None = Form(None, description="Known mosaic cell size N or HxW (else estimated)."),
        phase: str | None = Form(None, description="Known grid phase YxX (with cell)."),
        feather: int = Form(0, description="Blend the restoration in over N pixels inside the mask."),
        with_mask: bool = Form(False, description="Answer JSON with the result and the synthesized mask as PNG data URLs."),
    ):
        params = tasks.RestoreParams.from_form(model=model, sampling=sampling, kind=kind, cell=cell, phase=phase, feather=feather,
                                               with_mask=with_mask, name=tasks.download_name(image.filename))
        return await image_work(tasks.run_restore, params, image, mask, synthesized=True)

    @app.post(
        "/api/pixelate",
        summary="Hide regions: mosaic, blur or solid fill",
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "application/json": {}}}},
    )
    async def pixelate(
        image: UploadFile = File(..., description="The image."),
        mask: UploadFile | None = File(None, description="Optional mask image (white = hide), same size."),
        boxes: str | None = Form(None, description="Boxes x,y,w,h;x,y,w,h. Without mask or boxes: the whole image."),
        method: str = Form("mosaic", description="mosaic, blur or solid."),
        cell: str = Form("12", description="Mosaic cell size N or HxW."),
        phase: str | None = Form(None, description="Grid phase YxX."),
        sampling: str = Form("mean", description=f"What each cell holds: {sampling_help()}."),
        feather: int = Form(0, description="Blend the edge over N pixels."),
        sigma: float = Form(8.0, description="Blur sigma (method blur)."),
        with_mask: bool = Form(False, description="Answer JSON with the result and the changed-pixel mask as data URLs."),
    ):
        params = tasks.PixelateParams.from_form(method=method, cell=cell, phase=phase, sampling=sampling, feather=feather, sigma=sigma,
                                                boxes=boxes, with_mask=with_mask, name=tasks.download_name(image.filename))
        return await image_work(tasks.run_pixelate, params, image, mask, synthesized=False)

    @app.post(
        "/api/anonymize",
        summary="Find faces and text and hide them (mosaic, blur or solid); 501 where tessera.anonymize is missing",
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "application/json": {}}}, 501: {"description": "not available"}},
    )
    async def anonymize(
        image: UploadFile = File(..., description="The image."),
        find: str = Form("faces", description="Finders, comma-separated: faces, text, cam."),
        method: str = Form("blur", description="blur (default: our own restorer could not reverse it), mosaic or solid."),
        cell: str = Form("auto", description="Cell size in pixels, or auto (scales with each region)."),
        pad: float = Form(0.15, description="Each box grows by this fraction on every side."),
        threshold: float | None = Form(None, description="The finders' score threshold (default: each finder's own)."),
        with_mask: bool = Form(False, description="Answer JSON with the result and the hidden-pixel mask as data URLs."),
    ):
        if not tasks.anonymize_available():
            return _json_error(501, NO_ANONYMIZE)
        params = tasks.AnonymizeParams.from_form(find=find, method=method, cell=cell, pad=pad, threshold=threshold,
                                                 with_mask=with_mask, name=tasks.download_name(image.filename))
        return await image_work(tasks.run_anonymize, params, image, None, synthesized=False)

    # -------------------------------------------------------------------------------- jobs

    @app.post("/api/jobs", status_code=202,
              summary="Start long work (videos, big images) as a job: returns its id; poll it for progress and ETA")
    async def create_job(
        task: str = Form(..., description="detect, restore, pixelate or anonymize (videos: restore, pixelate or anonymize)."),
        image: UploadFile | None = File(None, description="The image; a video sent here is recognised by its type or extension."),
        video: UploadFile | None = File(None, description="The video (any format FFmpeg reads), instead of image."),
        mask: UploadFile | None = File(None, description="Optional mask image (white = selected), the frame's size; for a video it holds in every frame."),
        model: str = Form("default"),
        sampling: str | None = Form(None, description="restore (default auto) and pixelate (default mean): as on /api/restore and /api/pixelate."),
        kind: str = Form("auto"),
        cell: str | None = Form(None),
        phase: str | None = Form(None),
        feather: int = Form(0),
        method: str = Form("mosaic"),
        boxes: str | None = Form(None),
        sigma: float = Form(8.0),
        min_area: int = Form(64),
        sensitivity: float = Form(0.5),
        find: str = Form("faces"),
        pad: float = Form(0.15),
        threshold: float | None = Form(None),
        with_mask: bool = Form(False, description="Videos: also write the per-frame mask video (images always get their mask)."),
        crf: int = Form(18, description="Videos: the encoder's quality, 0 (lossless) .. 51."),
        preset: str = Form("medium", description="Videos: x264's speed preset, ultrafast .. veryslow."),
    ) -> dict:
        upload = video if _is_upload(video) else image
        if not _is_upload(upload):
            raise tasks.BadInput("send the file to work on as image (or video)")
        name = tasks.download_name(upload.filename)
        is_video = upload is video or tasks.looks_like_video(upload.filename, upload.content_type)
        params: Any
        if task == "detect" and not is_video:
            params = tasks.DetectParams(min_area=min_area, sensitivity=sensitivity, with_mask=True)
        elif task == "restore":
            params = tasks.RestoreParams.from_form(model=model, sampling=sampling, kind=kind, cell=cell, phase=phase, feather=feather, name=name)
        elif task == "pixelate":
            params = tasks.PixelateParams.from_form(method=method, cell=cell, phase=phase, sampling=sampling, feather=feather,
                                                    sigma=sigma, boxes=boxes, name=name)
        elif task == "anonymize":
            if not tasks.anonymize_available():
                return _json_error(501, NO_ANONYMIZE)  # type: ignore[return-value]
            params = tasks.AnonymizeParams.from_form(find=find, method=method, cell=cell, pad=pad, threshold=threshold, name=name)
        else:
            kinds = "restore, pixelate or anonymize" if is_video else "detect, restore, pixelate or anonymize"
            raise tasks.BadInput(f"task must be {kinds} for {'a video' if is_video else 'an image'}, got {task!r}")
        fn: Callable
        if is_video:
            if not tasks.video_available():
                return _json_error(501, "videos need PyAV (pip install 'tessera[video]')")  # type: ignore[return-value]
            container = ".mkv" if Path(str(upload.filename or "")).suffix.lower() in tasks.MKV_INPUTS else ".mp4"
            fn, params = tasks.run_video, tasks.VideoParams(params, with_mask=with_mask, crf=crf, preset=preset, container=container)
            outputs, saved_as = tasks.video_outputs, tasks.VIDEO
        elif task == "detect":
            fn, saved_as = tasks.run_detect, tasks.IMAGE

            def outputs(_info: dict) -> dict[str, tuple[str, str, str]]:
                return {"result": (tasks.RESULT_JSON, "application/json", f"{name}.regions.json"),
                        "mask": (tasks.RESULT_MASK, "image/png", f"{name}.mask.png")}
        else:
            fn = {"restore": tasks.run_restore, "pixelate": tasks.run_pixelate, "anonymize": tasks.run_anonymize}[task]
            outputs, saved_as = tasks.image_outputs, tasks.IMAGE
        if queue.full():
            raise Busy("the server is busy; retry later", queue.retry_after())
        job = store.new(task)
        try:
            await run_in_threadpool(_save, upload, job.folder / saved_as)
            if _is_upload(mask) and task != "anonymize":
                await run_in_threadpool(_save, mask, job.folder / tasks.MASK)
            job.future = queue.submit(run_job, job, fn, params, outputs)
        except BaseException:
            store.remove(job)
            raise
        return {"id": job.id, "status": job.status, "url": f"/api/jobs/{job.id}", "video": is_video}

    @app.get("/api/jobs", summary="Every job this server keeps")
    async def list_jobs() -> dict:
        store.expire()
        return {"jobs": [job.to_json() for job in store.all()]}

    def find(job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} (finished jobs are kept {config.job_ttl:g} s)")
        return job

    @app.get("/api/jobs/{job_id}", summary="A job's status, progress (0..1) and ETA in seconds")
    async def job_status(job_id: str) -> dict:
        return find(job_id).to_json()

    @app.get("/api/jobs/{job_id}/{output}", summary="Download a finished job's result or mask")
    async def job_output(job_id: str, output: str):
        job = find(job_id)
        if job.status != "done":
            raise HTTPException(409, f"job {job_id} is {job.status}, not done")
        if output not in job.outputs:  # a key of a dict this server filled: never a path
            raise HTTPException(404, f"job {job_id} has no output {output!r}; it has {', '.join(job.outputs)}")
        path, media, download = job.outputs[output]
        headers = {"X-Tessera-Notice": tasks.notice()} if job.task == "restore" else None
        return FileResponse(path, media_type=media, filename=download, headers=headers)

    @app.delete("/api/jobs/{job_id}", summary="Cancel a job and delete it and its files")
    async def cancel_job(job_id: str) -> dict:
        job = find(job_id)
        job.cancel_requested = True
        if job.future is not None and job.future.cancel():  # still waiting: it never runs
            job.status = "cancelled"
        if job.status in ("running",):
            job.status = "cancelling"
            return job.to_json() | {"status": "cancelling"}
        out = job.to_json() | {"status": "deleted" if job.status != "cancelled" else "cancelled"}
        store.remove(job)
        return out

    return app


def _swagger_assets() -> Path | None:
    """Swagger UI's files from the swagger-ui-bundle package (the web extra), if installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    path = Path(swagger_ui_path)
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def _image_answer(done: dict, files: dict[str, bytes], with_mask: bool, *, synthesized: bool):
    """The result PNG itself, or (with_mask) JSON holding both PNGs as data URLs and what was done."""
    if tasks.RESULT not in files:
        raise HTTPException(500, "the result was not written")
    if with_mask:
        body = dict(done)
        body["image"] = _data_url(files[tasks.RESULT])
        body["mask"] = _data_url(files[tasks.RESULT_MASK]) if tasks.RESULT_MASK in files else None
        return JSONResponse(body)
    headers = {"Content-Disposition": f'inline; filename="{done["result_name"]}"'}
    if synthesized:
        headers |= {"X-Tessera-Notice": done["notice"], "X-Tessera-Model": done["model"],
                    "X-Tessera-Synthesized-Mask": done["mask_name"]}
    return Response(files[tasks.RESULT], media_type="image/png", headers=headers)
