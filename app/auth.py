"""Access to the app: one API key, sent as a header, or exchanged for a signed session cookie.

- API clients send ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``.
- People log in once on ``/login`` with the key; the app sets ``vipcast_session``, an HttpOnly,
  SameSite=Lax cookie holding an expiry time and a random nonce signed with HMAC-SHA256 under a
  key derived from the API key (changing the API key ends every session). Logging out ends the
  session: the app keeps the logged-out cookies until they expire (in memory: per app process).
- Every path except the login form, logout and the static CSS/JS refuses a request without a
  valid key: ``/api/...`` and ``/openapi.json`` with 401 and a JSON message, pages with a 303
  redirect to the login form. Neither body holds any data.
- Keys and signatures are compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

SESSION_COOKIE = "vipcast_session"
SESSION_SECONDS = 12 * 3600
PUBLIC_PATHS = frozenset({"/login", "/logout"})
PUBLIC_PREFIXES = ("/static/",)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiKeyMissing(RuntimeError):
    """Neither VIPCAST_API_KEY nor VIPCAST_API_KEY_FILE gives a key, and --no-auth was not asked for."""


def resolve_api_key(no_auth: bool) -> str | None:
    """The API key from env VIPCAST_API_KEY, else the file named by VIPCAST_API_KEY_FILE; None with no_auth."""
    if no_auth:
        return None
    key = os.environ.get("VIPCAST_API_KEY", "").strip()
    if key:
        return key
    key_file = os.environ.get("VIPCAST_API_KEY_FILE", "").strip()
    if key_file:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as error:
            raise ApiKeyMissing(
                f"cannot read the API key file VIPCAST_API_KEY_FILE={key_file}: {error.strerror}"
            ) from None
        if not key:
            raise ApiKeyMissing(f"the API key file VIPCAST_API_KEY_FILE={key_file} is empty")
        return key
    raise ApiKeyMissing(
        "the app needs an API key: set VIPCAST_API_KEY (or VIPCAST_API_KEY_FILE, a file holding it), "
        "or pass --no-auth to serve without one on this machine only"
    )


def keys_match(provided: str | None, api_key: str) -> bool:
    """Constant-time comparison of a provided key with the API key."""
    if not provided:
        return False
    return hmac.compare_digest(provided.encode(), api_key.encode())


def _signing_key(api_key: str) -> bytes:
    return hmac.new(api_key.encode(), b"vipcast session cookie v1", hashlib.sha256).digest()


def _signature(api_key: str, payload: str) -> str:
    digest = hmac.new(_signing_key(api_key), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_session_cookie(api_key: str, now: float | None = None) -> str:
    """A signed session value: expiry.nonce.signature."""
    expires = int((now if now is not None else time.time()) + SESSION_SECONDS)
    payload = f"{expires}.{secrets.token_urlsafe(16)}"
    return f"{payload}.{_signature(api_key, payload)}"


def session_expiry(cookie: str | None, api_key: str) -> int | None:
    """The expiry time of a cookie signed under this API key (None for any other value)."""
    if not cookie or cookie.count(".") != 2:
        return None
    payload, signature = cookie.rsplit(".", 1)
    if not hmac.compare_digest(signature.encode(), _signature(api_key, payload).encode()):
        return None
    expires = payload.split(".", 1)[0]
    return int(expires) if expires.isdigit() else None


def session_is_valid(cookie: str | None, api_key: str, now: float | None = None) -> bool:
    """True when the cookie was signed under this API key and has not expired."""
    expires = session_expiry(cookie, api_key)
    return expires is not None and expires > (now if now is not None else time.time())


class LoggedOutSessions:
    """Session cookies ended by a log-out, until they expire: a replayed cookie worked for 12 hours."""

    def __init__(self) -> None:
        self._expiry: dict[str, int] = {}

    def add(self, cookie: str | None, api_key: str) -> None:
        if session_is_valid(cookie, api_key):
            self._expiry[cookie] = session_expiry(cookie, api_key)

    def __contains__(self, cookie: str | None) -> bool:
        now = time.time()
        for ended in [key for key, expires in self._expiry.items() if expires <= now]:
            del self._expiry[ended]
        return cookie in self._expiry


def header_text(value: str) -> str:
    """A header value (decoded as Latin-1, as HTTP's bytes are) read as the UTF-8 clients send: a key such as
    `clé-secrète-...` never matched in a header, while the /login form took it."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def _cookie(headers: dict[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def request_is_authorized(headers: dict[str, str], api_key: str, logged_out: LoggedOutSessions | None = None) -> bool:
    """A valid key in Authorization: Bearer, X-API-Key, or a valid session cookie not logged out."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and keys_match(header_text(token.strip()), api_key):
        return True
    if keys_match(header_text(headers.get("x-api-key", "").strip()), api_key):
        return True
    cookie = _cookie(headers, SESSION_COOKIE)
    return session_is_valid(cookie, api_key) and (logged_out is None or cookie not in logged_out)


def wants_json(path: str) -> bool:
    """API paths and the OpenAPI schema answer in JSON; everything else is a page."""
    return path.startswith("/api/") or path == "/openapi.json"


class RequireApiKey:
    """ASGI middleware: refuse every non-public request without a valid key (see the module docstring)."""

    def __init__(self, app: ASGIApp, api_key: str | None, logged_out: LoggedOutSessions | None = None) -> None:
        self.app = app
        self.api_key = api_key
        self.logged_out = logged_out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.api_key is None:
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        if request_is_authorized(_headers(scope), self.api_key, self.logged_out):
            await self.app(scope, receive, send)
            return
        if wants_json(path):
            body = json.dumps({"detail": "missing or invalid API key: send 'Authorization: Bearer KEY' "
                                         "or 'X-API-Key: KEY'"}).encode()
            await _respond(send, 401, body, [(b"content-type", b"application/json"),
                                             (b"www-authenticate", b'Bearer realm="vipcast"')])
            return
        target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
        location = "/login?next=" + quote(target, safe="")
        await _respond(send, 303, b"", [(b"location", location.encode("latin-1"))])


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
