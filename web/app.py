"""The interview API (FastAPI, OpenAPI at /docs) and the built browser client it serves.

Sessions: POST creates the room and dispatches the interviewer with the config as job metadata;
the candidate gets a join token for that room only, and the session's key, which every
per-session endpoint requires (auth.py), fresh join tokens included. Everything recorded about an
interview comes from the agent (sessions.py). Uploaded portraits belong to their uploader: an
upload key opens them, as does the key of a booking made with one (portraits.py). Every request
passes guard.py first (cross-site writes, content types, body size, JSON limits); bookings and
uploads are rate-limited per client address. Errors are JSON `{"detail": "<one sentence>"}`.
"""

import asyncio
import logging
import re
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from fastapi import Depends, FastAPI, File, Header, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from agent.config import (
    AVATAR_ID_PATTERN,
    BUILTIN_AVATARS,
    ConfigError,
    InterviewConfig,
    parse_config,
)

from . import health as health_mod
from .auth import bearer, key_hash, new_session_key, opens
from .guard import BodyRule, RequestGuard, client_address
from .interview_watch import InterviewWatcher, LiveKitWatch
from .livekit_ops import LiveKitRooms, LiveKitUnavailable
from .models import (
    AvatarInfo,
    AvatarUploaded,
    EraseResult,
    ErrorBody,
    Health,
    PromptFile,
    PromptUpdate,
    ResumeText,
    SessionCreated,
    SessionStatus,
    SessionSummary,
    SessionToken,
)
from .prompts_admin import PromptError, list_prompts, resolve, token_ok, write_prompt
from .ratelimit import SlidingWindowLimiter, client_key
from .resume_pdf import read_pdf_text
from .sessions import SESSION_ID_RE, SessionRecord, SessionRegistry, new_session_id, now_utc
from .settings import WebSettings
from .tokens import candidate_token
from .uploads import (
    UploadError,
    check_size,
    limit_resume,
    new_portrait_id,
    plain_resume,
    prepare_portrait,
    resume_kind,
)

logger = logging.getLogger("web.api")

AVATAR_ID_RE = re.compile(AVATAR_ID_PATTERN)
SPA_ROUTES = ("/", "/interview/{session_id}", "/report/{session_id}")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 403, 404, 409, 413, 415, 422, 429, 503)
}
# per-session endpoints: 401 without the session's key, 410 once the interview has ended
SESSION_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    401: {"model": ErrorBody},
    410: {"model": ErrorBody},
}
ENDED = "this interview has ended"
PORTRAIT_SWEEP_S = 60.0  # how often expired portraits are looked for
MULTIPART_OVERHEAD = 64 * 1024  # a form's boundaries and headers around the file
MAX_PROMPT_BODY = 2 * 1024 * 1024  # 200,000 characters, each escaped as \uXXXX at worst
OTHER_BODY = 64 * 1024  # routes that take no body


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=detail, headers=headers)


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings.from_env()
    registry = SessionRegistry(settings.data_dir)
    rooms = LiveKitRooms(settings)
    # ends a booking no interviewer took, and an interview whose interviewer was lost
    watcher = InterviewWatcher(registry, LiveKitWatch(rooms), settings.prompts_dir, settings.watch)
    limiter = SlidingWindowLimiter(settings.session_rate)
    upload_limiter = SlidingWindowLimiter(settings.upload_rate)
    portraits = registry.portraits
    http: dict[str, httpx.AsyncClient] = {}
    avatars_dir = settings.data_dir / "avatars"
    previews: dict[str, bytes] = {}

    async def sweep_portraits() -> None:
        await asyncio.to_thread(portraits.adopt_legacy)
        while True:
            try:
                await asyncio.to_thread(portraits.sweep, settings.portrait_retention_s, now_utc())
            except Exception:  # the next sweep tries again
                logger.exception("portrait sweep failed")
            await asyncio.sleep(PORTRAIT_SWEEP_S)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        http["client"] = httpx.AsyncClient()
        watcher.start()
        sweeper = asyncio.create_task(sweep_portraits(), name="portrait-sweep")
        logger.info(
            "interview API ready",
            extra={"livekit": settings.livekit_url, "data_dir": str(settings.data_dir)},
        )
        try:
            yield
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            await http["client"].aclose()
            await watcher.aclose()
            await rooms.aclose()
            registry.close()

    app = FastAPI(
        title="Interview Avatar API",
        version=health_mod.version(),
        description="Mock-interview sessions on LiveKit: start, follow, end, report, erase.",
        lifespan=lifespan,
        docs_url=None,  # served below with local Swagger UI files: no CDN, works offline
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.rooms = rooms
    app.state.watcher = watcher
    app.state.limiter = limiter
    app.state.upload_limiter = upload_limiter

    def body_rule(method: str, path: str) -> BodyRule:
        """What each route takes as its body (guard.py)."""
        if method == "POST" and path == "/api/sessions":
            return BodyRule("json", settings.max_json_bytes)
        if method == "PUT" and path.startswith("/api/prompts/"):
            return BodyRule("json", MAX_PROMPT_BODY)
        if method == "POST" and path == "/api/avatars":
            return BodyRule("multipart", settings.max_portrait_bytes + MULTIPART_OVERHEAD)
        if method == "POST" and path == "/api/resume":
            return BodyRule("multipart", settings.max_resume_bytes + MULTIPART_OVERHEAD)
        return BodyRule("none", OTHER_BODY)

    app.add_middleware(RequestGuard, rule_for=body_rule, allowed_origins=settings.cors_origins)
    if settings.cors_origins:  # closed unless the operator names origins: no CORS headers at all
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,  # keys travel in Authorization, never in cookies
            max_age=600,
        )

    def rate_limited(request: Request, which: SlidingWindowLimiter, what: str) -> None:
        """Count one request of this client (every attempt counts, a refused one too); 429
        past the limit."""
        client = client_key(client_address(request.scope, settings.trusted_proxies))
        wait = which.acquire(client)
        if wait:
            raise _error(
                429,
                f"too many {what} from this address; try again in {int(wait) + 1} seconds",
                {"Retry-After": str(int(wait) + 1)},
            )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if p not in ("body", "path", "query"))
        return JSONResponse({"detail": f"field '{where}': {err['msg']}"}, status_code=422)

    def session_record(
        session_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> SessionRecord:
        """The session, for a request that holds its key (or the admin token). Without a key:
        401; with a wrong one: the same 404 as an unknown session, so ids cannot be probed."""
        given = bearer(authorization)
        if given is None:
            raise _error(
                401,
                "this session's key is required: send Authorization: Bearer <session_key>",
                {"WWW-Authenticate": "Bearer"},
            )
        record = registry.get(session_id) if SESSION_ID_RE.match(session_id) else None
        if record is None or not opens(record.key_hash, given, settings.admin_token):
            raise _error(404, f"no interview session with id '{session_id}'")
        return record

    Session = Annotated[SessionRecord, Depends(session_record)]

    # -- sessions -------------------------------------------------------------------------------

    @app.post(
        "/api/sessions",
        status_code=201,
        response_model=SessionCreated,
        responses=ERRORS,
        tags=["sessions"],
        summary="Start an interview: room, interviewer dispatch and candidate token",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": InterviewConfig.model_json_schema()}},
            }
        },
    )
    async def create_session(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> SessionCreated:
        """With an uploaded portrait as `avatar`, send its upload key as `Authorization: Bearer
        <upload_key>`: a portrait is its uploader's."""
        # counted before the body is looked at: invalid bookings count too
        rate_limited(request, limiter, "interviews started")
        try:
            config = parse_config(await request.body())
        except ConfigError as e:
            raise _error(422, str(e)) from None
        client = client_address(request.scope, settings.trusted_proxies)
        avatar = config.avatar
        upload = avatar not in BUILTIN_AVATARS and portraits.is_upload(avatar)
        if upload:
            given = bearer(authorization)
            if not (
                given
                and (
                    opens(None, given, settings.admin_token)
                    or portraits.upload_key_opens(avatar, given)
                )
                and (avatars_dir / avatar / "portrait.json").is_file()
            ):
                raise _error(
                    422,
                    f"field 'avatar': no portrait '{avatar}' opens with the upload key sent "
                    "(Authorization: Bearer <upload_key>)",
                )
        elif (
            avatar not in BUILTIN_AVATARS and not (avatars_dir / avatar / "portrait.json").is_file()
        ):
            raise _error(422, f"field 'avatar': no prepared avatar with id '{avatar}'")
        session_id = new_session_id()
        identity = f"candidate-{session_id[3:]}"
        now = now_utc()
        token, expires = candidate_token(settings, session_id, identity, config.candidate_name, now)
        key = new_session_key()
        # the booking lapses when its room stops waiting for the candidate (the join window),
        # not when its first token expires: the page gets fresh ones (POST .../token)
        join_by = now + timedelta(seconds=settings.join_window_s)
        registry.add(session_id, identity, config, join_by, key_hash(key))
        if upload and not portraits.exists(avatar):  # erased or expired meanwhile
            registry.mark_ended(session_id)
            raise _error(422, f"field 'avatar': the portrait '{avatar}' was just deleted")
        try:
            await rooms.start_interview(session_id, config.to_json())
        except LiveKitUnavailable as e:
            registry.mark_ended(session_id)
            raise _error(503, str(e)) from None
        logger.info(
            "session created",
            extra={"room": session_id, "language": config.language, "client": client},
        )
        return SessionCreated(
            session_id=session_id,
            session_key=key,
            livekit_url=settings.livekit_public_url,
            token=token,
            participant_identity=identity,
            expires_at=expires.isoformat(timespec="seconds"),
            language=config.language,
            duration_minutes=config.duration_minutes,
            avatar=config.avatar,
        )

    @app.get(
        "/api/sessions/{session_id}",
        response_model=SessionStatus,
        responses=SESSION_ERRORS,
        tags=["sessions"],
        summary="Status, times, duration and turn count of an interview",
    )
    async def get_session(record: Session) -> SessionStatus:
        return registry.status(record)

    @app.post(
        "/api/sessions/{session_id}/token",
        response_model=SessionToken,
        responses=SESSION_ERRORS,
        tags=["sessions"],
        summary="A fresh join token for the interview's room, while the interview goes on",
    )
    async def session_token(record: Session) -> SessionToken:
        """The page asks for one each time it joins or rejoins (a reload at minute 80 of a
        90-minute interview, a lost network): the booking's token expires after
        INTERVIEW_TOKEN_TTL_S. 410 once the interview has ended or its room is gone (the server
        never creates it again on a join)."""
        if registry.status(record).status in ("ended", "erased", "expired"):
            raise _error(410, ENDED)
        try:
            exists = await rooms.room_exists(record.id)
        except LiveKitUnavailable as e:
            raise _error(503, str(e)) from None
        if not exists:
            raise _error(410, ENDED)
        # the same room, identity and grants as the booking's token; the display name is not
        # kept by the API (nothing reads it), so a fresh token has none
        token, expires = candidate_token(settings, record.id, record.identity, "", now_utc())
        return SessionToken(
            session_id=record.id,
            livekit_url=settings.livekit_public_url,
            token=token,
            participant_identity=record.identity,
            expires_at=expires.isoformat(timespec="seconds"),
        )

    @app.delete(
        "/api/sessions/{session_id}",
        response_model=SessionSummary,
        responses=SESSION_ERRORS,
        tags=["sessions"],
        summary="End an interview: the interviewer closes, the room is removed",
    )
    async def end_session(record: Session) -> SessionSummary:
        polite = False
        if not record.ended_at and not record.erased_at:
            with watcher.ending(record.id):  # the interviewer leaving now is no loss
                try:
                    polite = await rooms.end_interview(record.id)
                except LiveKitUnavailable as e:
                    raise _error(503, str(e)) from None
                registry.mark_ended(record.id)
        status = registry.status(registry.get(record.id) or record)
        return SessionSummary(
            **status.model_dump(),
            ended_politely=polite,
            report_url=f"/api/sessions/{record.id}/report",
        )

    @app.get(
        "/api/sessions/{session_id}/report",
        responses={
            **SESSION_ERRORS,
            200: {"content": {"application/json": {}, "text/html": {}}},
        },
        tags=["reports"],
        summary="The interview report: JSON, or HTML with Accept: text/html",
    )
    async def get_report(
        record: Session,
        accept: Annotated[str, Header()] = "",
        format: Literal["json", "html"] | None = None,
    ) -> Response:
        directory = registry.interview_dir(record.id)
        if record.erased_at:
            raise _error(404, f"the data of interview '{record.id}' was erased")
        # ?format= wins (a plain link cannot set Accept); else HTML only when asked for first
        wants_html = (
            format == "html"
            if format
            else "text/html" in accept and "application/json" not in accept.split(",")[0]
        )
        path = directory / ("report.html" if wants_html else "report.json")
        if not path.is_file():
            status = registry.status(record)
            if status.status in ("waiting", "in_progress"):
                raise _error(409, "the report is written when the interview ends")
            raise _error(404, f"the report of interview '{record.id}' is not ready yet")
        media = "text/html; charset=utf-8" if wants_html else "application/json"
        return FileResponse(path, media_type=media, headers={"Cache-Control": "no-store"})

    @app.delete(
        "/api/sessions/{session_id}/data",
        response_model=EraseResult,
        responses=SESSION_ERRORS,
        tags=["reports"],
        summary="Erase the transcript, report and audio of an interview",
    )
    async def erase_session(record: Session) -> EraseResult:
        status = registry.status(record)
        if status.status in ("waiting", "in_progress"):
            raise _error(409, "end the interview before erasing its data")
        erased = await asyncio.to_thread(registry.erase, record.id)
        logger.info("interview data erased", extra={"room": record.id, "items": len(erased)})
        return EraseResult(session_id=record.id, erased=erased)

    # -- avatars and resumes --------------------------------------------------------------------

    @app.get(
        "/api/avatars",
        response_model=list[AvatarInfo],
        tags=["avatars"],
        summary="The built-in characters (an uploaded portrait is listed to no one)",
    )
    async def list_avatars() -> list[AvatarInfo]:
        return [
            AvatarInfo(avatar_id=a, kind="character", image_url=f"/api/avatars/{a}/image")
            for a in BUILTIN_AVATARS
        ]

    @app.post(
        "/api/avatars",
        status_code=201,
        response_model=AvatarUploaded,
        responses=ERRORS,
        tags=["avatars"],
        summary="Upload a frontal portrait photo; returns its avatar id and its upload key",
    )
    async def upload_avatar(
        request: Request, file: Annotated[UploadFile, File()]
    ) -> AvatarUploaded:
        rate_limited(request, upload_limiter, "uploads")
        data = await file.read(settings.max_portrait_bytes + 1)
        avatar_id = new_portrait_id()
        try:
            check_size(data, settings.max_portrait_bytes, "portrait")
            await asyncio.to_thread(
                prepare_portrait, data, file.content_type or "", avatars_dir, avatar_id
            )
        except UploadError as e:
            raise _error(e.status, str(e)) from None
        key = new_session_key()
        now = now_utc()
        portraits.add(avatar_id, key, now)
        logger.info("portrait prepared", extra={"avatar": avatar_id})
        expires = now + timedelta(seconds=settings.portrait_retention_s)
        return AvatarUploaded(
            avatar_id=avatar_id,
            kind="portrait",
            image_url=f"/api/avatars/{avatar_id}/image",
            upload_key=key,
            expires_at=expires.isoformat(timespec="seconds"),
        )

    @app.get(
        "/api/avatars/{avatar_id}/image",
        responses={**ERRORS, 401: {"model": ErrorBody}},
        tags=["avatars"],
        summary="An avatar's picture: a character's for anyone; a portrait's with its upload "
        "key or the key of an interview booked with it",
    )
    async def avatar_image(
        avatar_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        if avatar_id in BUILTIN_AVATARS:
            if avatar_id not in previews:
                previews[avatar_id] = await asyncio.to_thread(_character_png, avatar_id)
            return Response(previews[avatar_id], media_type="image/png")
        missing = _error(404, f"no avatar with id '{avatar_id}'")
        if not AVATAR_ID_RE.match(avatar_id):
            raise missing
        given = bearer(authorization)
        if given is None:
            raise _error(
                401,
                "this portrait's key is required: send Authorization: Bearer <upload_key> (or "
                "the key of an interview booked with it)",
                {"WWW-Authenticate": "Bearer"},
            )
        path = avatars_dir / avatar_id / "source.png"
        allowed = (
            opens(None, given, settings.admin_token)
            or portraits.upload_key_opens(avatar_id, given)
            or portraits.booking_key_opens(avatar_id, given)
        )
        if not allowed or not path.is_file():  # a wrong key: the same as an unknown avatar
            raise missing
        return FileResponse(
            path, media_type="image/png", headers={"Cache-Control": "private, no-store"}
        )

    @app.post(
        "/api/resume",
        response_model=ResumeText,
        responses=ERRORS,
        tags=["sessions"],
        summary="Turn a resume (PDF or text) into the config's resume_text; nothing is stored",
    )
    async def upload_resume(request: Request, file: Annotated[UploadFile, File()]) -> ResumeText:
        rate_limited(request, upload_limiter, "uploads")
        data = await file.read(settings.max_resume_bytes + 1)
        try:
            check_size(data, settings.max_resume_bytes, "resume")
            kind = resume_kind(data, file.filename or "", file.content_type or "")
            if kind == "pdf":  # in a child process with hard limits (resume_pdf.py)
                text = await read_pdf_text(data, settings.resume_timeout_s)
            else:
                text = await asyncio.to_thread(plain_resume, data)
        except UploadError as e:
            raise _error(e.status, str(e)) from None
        if not text:
            raise _error(422, "the resume file has no text in it")
        text, truncated = limit_resume(text)
        return ResumeText(resume_text=text, chars=len(text), truncated=truncated, source=kind)

    # -- prompts (admin) ------------------------------------------------------------------------

    def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        if not settings.admin_token:
            raise _error(403, "prompt editing is disabled: set INTERVIEW_ADMIN_TOKEN on the server")
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not token_ok(settings.admin_token, given):
            raise _error(401, "an admin token is required (Authorization: Bearer <token>)")

    Admin = Annotated[None, Depends(admin)]
    admin_errors = {**ERRORS, 401: {"model": ErrorBody}, 403: {"model": ErrorBody}}

    @app.get("/api/prompts", response_model=list[str], responses=admin_errors, tags=["prompts"])
    async def prompt_names(_admin: Admin) -> list[str]:
        return list_prompts(settings.prompts_dir)

    @app.get(
        "/api/prompts/{name:path}",
        response_model=PromptFile,
        responses=admin_errors,
        tags=["prompts"],
    )
    async def get_prompt(name: str, _admin: Admin) -> PromptFile:
        try:
            path = resolve(settings.prompts_dir, name)
        except PromptError as e:
            raise _error(e.status, str(e)) from None
        return PromptFile(name=name, text=path.read_text(encoding="utf-8", errors="replace"))

    @app.put(
        "/api/prompts/{name:path}",
        response_model=PromptFile,
        responses=admin_errors,
        tags=["prompts"],
    )
    async def put_prompt(name: str, body: PromptUpdate, _admin: Admin) -> PromptFile:
        try:
            await write_prompt(settings.prompts_dir, name, body.text)
        except PromptError as e:
            raise _error(e.status, str(e)) from None
        logger.info("prompt file edited", extra={"prompt": name})
        return PromptFile(name=name, text=body.text)

    # -- health and the browser client ----------------------------------------------------------

    @app.get("/health", response_model=Health, tags=["health"])
    async def get_health() -> Health:
        return await health_mod.health(rooms, http["client"], settings.avatar_service_url)

    _mount_client(app, settings.client_dir)
    return app


def _character_png(name: str) -> bytes:
    import io

    from PIL import Image

    from avatar_worker.avatars import get_composer
    from avatar_worker.engine import FaceState, Pose

    rgb = get_composer(name, 256).rgb(FaceState(Pose(), 0, 0))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _mount_client(app: FastAPI, dist: Path) -> None:
    index = dist / "index.html"
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="assets")
    docs_assets = dist / "docs-assets"
    if docs_assets.is_dir():
        app.mount("/docs-assets", StaticFiles(directory=docs_assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not (docs_assets / "swagger-ui-bundle.js").is_file():
            return HTMLResponse(
                "<h1>API docs</h1><p>The Swagger UI files are installed with the browser client "
                "(<code>scripts/setup.sh</code>); the schema itself is at "
                '<a href="/openapi.json">/openapi.json</a>.</p>',
                status_code=503,
            )
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Interview Avatar API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    async def page() -> Response:
        if not index.is_file():
            return HTMLResponse(
                "<h1>The browser client is not built</h1><p>Run <code>scripts/setup.sh</code> "
                "(or <code>npm ci && npm run build</code> in web/client).</p>",
                status_code=503,
            )
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    for route in SPA_ROUTES:
        app.add_api_route(route, page, include_in_schema=False, methods=["GET"])
