"""The marketing web app and API over the outputs store (read-only).

    app = create_app(OutputsStore(workdir / "outputs.duckdb"), api_key=resolve_api_key(no_auth=False))
    run("127.0.0.1", 8000, store, api_key)          # what `vipcast app` does

Pages: ``/`` (programme overview), ``/lists/{rising-stars|at-risk|tiers|events}``,
``/customers/{id}``, ``/runs``, ``/login``. API: ``/api/v1/lists/{list}``, ``/api/v1/runs``,
``/api/v1/customers/{id}``, described by ``/openapi.json`` (no /docs: it would load a CDN).
Every page and endpoint needs the API key (see ``app.auth``). The store is opened read-only and
each request opens and closes its own connection, so the app never holds DuckDB's lock.
Requests are logged by route template (``/api/v1/customers/{customer_id}``), never with query
strings or ids; uvicorn's access log is off.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import api, pages
from app.auth import ApiKeyMissing, LoggedOutSessions, RequireApiKey, resolve_api_key, wants_json
from flows.ingest import hide_password
from flows.store import (
    AmbiguousRun,
    NoRunsYet,
    OutputsStore,
    RunNotFound,
    StoreBusy,
    StoreDamaged,
    StoreWalDamaged,
    StoreError,
    StoreUnreachable,
    UnknownList,
)

__all__ = ["ApiKeyMissing", "create_app", "resolve_api_key", "run"]

logger = logging.getLogger("vipcast.app")
STATIC_DIR = Path(__file__).parent / "static"


def store_cause(error: Exception) -> str:
    """For the log: the first line of a database's or the file system's error (a damaged store file said
    only "unhandled IOException on /"); other errors' texts may quote data, and stay out of the log."""
    import duckdb

    if not isinstance(error, (duckdb.Error, OSError)):
        return ""
    first = (str(error).strip().splitlines() or [""])[0][:300]
    return f": {hide_password(first)}"


def create_app(store: OutputsStore, api_key: str | None, behind_https: bool = False, loopback_hosts_only: bool = False) -> FastAPI:
    """The FastAPI app over a read-only view of ``store``; ``api_key=None`` serves without a key.
    ``behind_https``: readers reach it over HTTPS through a proxy, so the session cookie is ``Secure``
    (the app trusts no forwarded header to learn that). ``loopback_hosts_only``: answer only requests
    addressed to localhost or a loopback address (`run` sets it when serving without a key)."""
    app = FastAPI(
        title="vipcast",
        summary="Rising stars, at-risk members, tiers and events from vipcast's scoring runs.",
        version="1",
        docs_url=None,
        redoc_url=None,
        # Starlette answered /api/v1/runs/ with a 307 to an absolute URL built from the Host header.
        redirect_slashes=False,
    )
    app.state.store = store.read_only_view()
    app.state.api_key = api_key
    app.state.behind_https = behind_https
    app.state.overview_cache = pages.OverviewCache()
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_error_handlers(app)
    document_errors_and_security(app, api_key)
    app.state.logged_out = LoggedOutSessions()
    app.add_middleware(RequireApiKey, api_key=api_key, logged_out=app.state.logged_out)
    if loopback_hosts_only:
        app.add_middleware(LoopbackHostsOnly)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(LogRequests)
    return app


# Every error answer is {"detail": "<one line>"} (see install_error_handlers), not FastAPI's 422 list.
ERROR_SCHEMA = {"title": "Error", "type": "object", "required": ["detail"],
                "properties": {"detail": {"type": "string", "description": "What is wrong, in one line."}}}
ERROR_RESPONSES = {
    "400": "A query parameter is not valid (e.g. top=0, an unknown tier or format, a malformed as_of).",
    "401": "The API key is missing or wrong (send X-API-Key or Authorization: Bearer).",
    "404": "No such list, run, as-of date or customer, or no scoring run yet.",
    "503": "The outputs store is busy or cannot be reached; retry after the Retry-After seconds.",
    "500": "The outputs store is damaged (restore it from a backup), or an internal error; the server log says which.",
}


def document_errors_and_security(app: FastAPI, api_key: str | None) -> None:
    """The error answers the API really gives, and (with a key) both ways of sending the key, in the OpenAPI schema."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            components = document.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            schemas["Error"] = ERROR_SCHEMA
            errors = {status: text for status, text in ERROR_RESPONSES.items() if status != "401" or api_key is not None}
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    responses.pop("422", None)
                    for status, text in errors.items():
                        responses[status] = {"description": text,
                                             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            if api_key is not None:
                components["securitySchemes"] = {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                }
                document["security"] = [{"bearer": []}, {"apiKeyHeader": []}]
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = schema


# Errors: a clear 4xx message as JSON (API) or a page, never a stack trace.

STORE_ERROR_STATUS = {NoRunsYet: 404, RunNotFound: 404, UnknownList: 404, AmbiguousRun: 400, StoreBusy: 503,
                      StoreUnreachable: 503, StoreDamaged: 500}


def error_response(request: Request, status: int, message: str) -> Response:
    headers = {"Retry-After": "5"} if status == 503 else None
    if wants_json(request.url.path):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    return pages.templates.TemplateResponse(
        request, "error.html", {"request": request, "status": status, "message": message,
                                "auth_enabled": request.app.state.api_key is not None},
        status_code=status, headers=headers)


def validation_message(error: RequestValidationError) -> tuple[int, str]:
    problems = []
    status = 400
    for problem in error.errors():
        where, *name = problem.get("loc", ("request",))
        field = ".".join(str(part) for part in name) or str(where)
        if where == "path":
            status = 404
        received = problem.get("input")
        shown = f" (got {received!r})" if isinstance(received, (str, int, float)) and len(str(received)) < 60 else ""
        problems.append(f"{where} parameter {field!r}: {problem.get('msg', 'invalid value')}{shown}")
    return status, "; ".join(problems) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        status, message = validation_message(error)
        return error_response(request, status, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        message = error.detail if isinstance(error.detail, str) else "request refused"
        if error.status_code == 404 and message == "Not Found":
            message = f"no page or endpoint at {request.url.path}"
        if error.status_code == 405:
            message = f"{request.method} is not allowed here"
        return error_response(request, error.status_code, message)

    @app.exception_handler(NoRunsYet)
    async def empty_store(request: Request, error: NoRunsYet) -> Response:
        if wants_json(request.url.path):
            return error_response(request, 404, str(error))
        return pages.templates.TemplateResponse(request, "empty.html", {
            "request": request, "auth_enabled": request.app.state.api_key is not None, "page": None})

    @app.exception_handler(StoreError)
    async def store_error(request: Request, error: StoreError) -> Response:
        status = next((code for kind, code in STORE_ERROR_STATUS.items() if isinstance(error, kind)), 500)
        if isinstance(error, StoreUnreachable):  # the reason names the database server: for the log, not the page
            logger.warning("%s", error)
            return error_response(request, status, "the outputs store cannot be reached right now; try again later")
        if isinstance(error, StoreDamaged):  # the file's path is for the log (every request answered "internal error")
            logger.error("%s", error)
            if isinstance(error, StoreWalDamaged):  # restoring a backup would lose more than the log's runs
                return error_response(request, status, "the outputs store's write-ahead log is damaged: move the .wal file "
                                                        "aside (the server log names it) to open the store as of its last "
                                                        "checkpoint, and score the runs after it again")
            return error_response(request, status, "the outputs store is damaged: restore it from a backup (the server "
                                                    "log names the file)")
        return error_response(request, status, str(error) if status < 500 or status == 503 else "store error")


def route_of(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)  # path_format: no ":path" converter
    return template or ("/static/*" if scope.get("path", "").startswith("/static/") else "-")


class LogRequests:
    """Log method, route template, status and time: no query strings, ids or client data.

    An unexpected error becomes a plain 500 here, logged by its type only: its message or
    traceback could carry customer data into the logs.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 0}

        async def record_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        except Exception as error:
            logger.error("unhandled %s on %s%s", type(error).__name__, route_of(scope), store_cause(error))
            if status["code"] == 0:
                response = error_response(Request(scope), 500, "internal error: the server log names the failing route")
                await response(scope, receive, record_status)
        finally:
            logger.info("%s %s %s %.0fms", scope["method"], route_of(scope), status["code"],
                        (time.perf_counter() - started) * 1000)


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"),
]


class SecurityHeaders:
    """Same-origin-only pages, no framing or sniffing; nothing but static files may be cached."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope.get("path", "").startswith("/static/")

        async def add_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                if not cacheable and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, add_headers)


class LoopbackHostsOnly:
    """Refuse (400) a request whose Host header is not localhost or a loopback address. Without a key the app
    answered `Host: attacker.example`: a web page the user opens can point its own name at 127.0.0.1 (DNS
    rebinding) and read every list, although the app listens on loopback only."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not is_loopback(request_host(scope)):
            response = error_response(Request(scope), 400, "the Host header names another machine: this app, served "
                                      "without an API key, answers requests to localhost or 127.0.0.1 only")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def request_host(scope: dict[str, Any]) -> str:
    """The host name of a request's Host header, without its port ("[::1]:8000": ::1); "" without one."""
    host = next((value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"host"), "").lower()
    if host.startswith("["):
        return host[1:].split("]")[0]
    # Host names are case-insensitive and may end in the root's dot (LOCALHOST, localhost.): both were refused.
    return (host.rsplit(":", 1)[0] if host.count(":") == 1 else host).removesuffix(".")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PortUnavailable(OSError):
    """The app cannot listen on the address (the port is taken, or the host is not this machine's)."""


def check_port_free(host: str, port: int) -> None:
    """PortUnavailable naming host, port and the reason, before uvicorn logs it and exits with code 3."""
    import socket

    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise PortUnavailable(error.errno, f"cannot serve on {host}:{port}: {error.strerror}") from error
    family, kind, proto, _, address = addresses[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closing socket is no conflict
        try:
            probe.bind(address)
        except OSError as error:
            raise PortUnavailable(error.errno, f"cannot serve on {host}:{port}: {error.strerror}") from error


class NoAuthOffLoopback(ValueError):
    """--no-auth asked for on an address other machines reach."""


class WeakApiKey(ValueError):
    """A key short enough to guess, on an address other machines reach."""


# Off loopback the key is all that guards the lists, and the app has no lockout: a short key
# (README's `change-me` example is 9 characters) can be found by trying.
MIN_KEY_LENGTH_OFF_LOOPBACK = 16


def run(host: str, port: int, store: OutputsStore, api_key: str | None, no_auth: bool = False,
        behind_https: bool = False) -> None:
    """Serve the app with uvicorn (access log off). Without a key, only on a loopback address."""
    import sys

    import uvicorn

    if api_key is None and not is_loopback(host):
        if no_auth:  # a key may well be set: --no-auth is what turned it off
            raise NoAuthOffLoopback(f"refusing to serve without an API key on {host}: --no-auth is for local use; serve on "
                                    "127.0.0.1, or leave --no-auth out and set VIPCAST_API_KEY")
        raise ApiKeyMissing(f"refusing to serve without an API key on {host}: use 127.0.0.1 or set VIPCAST_API_KEY")
    if api_key is not None and len(api_key) < MIN_KEY_LENGTH_OFF_LOOPBACK and not is_loopback(host):
        raise WeakApiKey(f"refusing to serve on {host} with an API key of {len(api_key)} characters: other machines "
                         f"can reach it and try keys; use one of {MIN_KEY_LENGTH_OFF_LOOPBACK} characters or more (python3 -c "
                         "'import secrets; print(secrets.token_urlsafe(24))' makes one)")
    if no_auth:
        ignored = " (VIPCAST_API_KEY is set and not used)" if os.environ.get("VIPCAST_API_KEY", "").strip() else ""
        print(f"warning: serving without an API key (--no-auth){ignored}: anyone who can open {host}:{port} on this "
              "machine reads the lists", file=sys.stderr)
    check_port_free(host, port)
    store.runs()  # a damaged store file is refused here, with the CLI's one line, not a 500 on every request
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(store, api_key, behind_https, loopback_hosts_only=api_key is None), host=host, port=port, access_log=False, server_header=False,
                proxy_headers=False, log_level="info")

