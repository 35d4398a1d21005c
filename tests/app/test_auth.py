"""Access: API key in headers or a signed session cookie; every route refuses without one."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from app import api, auth, pages
from app.server import ApiKeyMissing, resolve_api_key, run
from app_testing import API_KEY, make_client
from flows.store import OutputsStore

PAGES = ["/", "/lists/rising-stars", "/lists/at-risk", "/lists/tiers", "/lists/events", "/runs",
         "/customers/1005", "/customers?customer_id=1005"]
API = ["/api/v1/runs", "/api/v1/lists/rising-stars", "/api/v1/lists/at-risk?format=csv", "/api/v1/lists/tiers",
       "/api/v1/lists/events", "/api/v1/customers/1005", "/api/v1/customers?customer_id=1005", "/openapi.json"]


def test_every_route_is_listed_here() -> None:
    """A new route must be added to PAGES or API, so the refusal tests below cover it."""
    routes = [*api.router.routes, *pages.router.routes]
    templates = {route.path for route in routes if "GET" in route.methods} | {"/openapi.json"}
    covered = {"/", "/lists/{list_name}", "/runs", "/customers/{customer_id:anytext}", "/customers", "/api/v1/runs",
               "/api/v1/lists/{list_name}", "/api/v1/customers/{customer_id:anytext}", "/api/v1/customers", "/openapi.json",
               "/login"}
    assert templates == covered


@pytest.mark.parametrize("path", API)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {API_KEY}"}, {"X-API-Key": ""},
                                     {"Cookie": f"{auth.SESSION_COOKIE}=forged.value.sig"}],
                         ids=["none", "wrong-x-api-key", "wrong-bearer", "basic", "empty", "forged-cookie"])
def test_api_refuses_without_a_valid_key(anonymous, path: str, headers: dict[str, str]) -> None:
    response = anonymous.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "missing or invalid API key: send 'Authorization: Bearer KEY' "
                                         "or 'X-API-Key: KEY'"}
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_to_the_login_form_with_an_empty_body(anonymous, path: str) -> None:
    response = anonymous.get(path, headers={"X-API-Key": "wrong"})
    assert response.status_code == 303
    assert response.content == b""
    assert response.headers["location"].startswith("/login?next=%2F")


@pytest.mark.parametrize("path", API + PAGES)
@pytest.mark.parametrize("style", ["x-api-key", "bearer", "bearer-lowercase"])
def test_both_header_styles_open_every_route(anonymous, path: str, style: str) -> None:
    headers = {"x-api-key": {"X-API-Key": API_KEY}, "bearer": {"Authorization": f"Bearer {API_KEY}"},
               "bearer-lowercase": {"authorization": f"bearer {API_KEY}"}}[style]
    response = anonymous.get(path, headers=headers, follow_redirects=True)
    assert response.status_code == 200, response.text[:300]


def test_login_sets_a_signed_http_only_cookie_that_opens_pages_and_downloads(anonymous) -> None:
    form = anonymous.get("/login?next=/lists/at-risk")
    assert form.status_code == 200 and 'name="api_key"' in form.text and "/lists/at-risk" in form.text

    refused = anonymous.post("/login", data={"api_key": "wrong", "next": "/lists/at-risk"})
    assert refused.status_code == 401 and "not valid" in refused.text
    assert auth.SESSION_COOKIE not in refused.headers.get("set-cookie", "")

    accepted = anonymous.post("/login", data={"api_key": API_KEY, "next": "/lists/at-risk"})
    assert accepted.status_code == 303 and accepted.headers["location"] == "/lists/at-risk"
    cookie = accepted.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert API_KEY not in accepted.headers["set-cookie"]

    assert anonymous.get("/lists/at-risk").status_code == 200
    assert anonymous.get("/api/v1/lists/at-risk?format=csv").status_code == 200

    session = anonymous.cookies.get(auth.SESSION_COOKIE)
    anonymous.post("/logout")
    assert anonymous.get("/lists/at-risk").status_code == 303
    # The cookie itself is over: replayed after the log-out it opened everything for 12 hours.
    anonymous.cookies.set(auth.SESSION_COOKIE, session)
    assert anonymous.get("/lists/at-risk").status_code == 303
    assert anonymous.get("/api/v1/runs").status_code == 401


def test_a_tampered_or_expired_cookie_is_refused(anonymous) -> None:
    good = auth.new_session_cookie(API_KEY)
    expires, nonce, signature = good.split(".")
    tampered = f"{int(expires) + 3600}.{nonce}.{signature}"
    expired = auth.new_session_cookie(API_KEY, now=time.time() - auth.SESSION_SECONDS - 1)
    other_key = auth.new_session_cookie("another-key")
    for value in (tampered, expired, other_key, "", "a.b", good + "x"):
        anonymous.cookies.set(auth.SESSION_COOKIE, value)
        assert anonymous.get("/api/v1/runs").status_code == 401, value
    anonymous.cookies.set(auth.SESSION_COOKIE, good)
    assert anonymous.get("/api/v1/runs").status_code == 200


def test_the_session_cookie_is_secure_behind_https(filled_store: OutputsStore) -> None:
    """Behind a TLS proxy the app sees http and marked the cookie for any scheme; --behind-https marks it Secure."""
    def cookie(behind_https: bool) -> str:
        client = make_client(filled_store, API_KEY, behind_https=behind_https, follow_redirects=False)
        return client.post("/login", data={"api_key": API_KEY, "next": "/"}).headers["set-cookie"].lower()

    assert "secure" not in cookie(False)
    assert "; secure" in cookie(True)


def test_login_never_redirects_off_site(anonymous) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "\\\\evil", "javascript:alert(1)"):
        response = anonymous.post("/login", data={"api_key": API_KEY, "next": target})
        assert response.headers["location"] == "/", target


def test_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert auth.request_is_authorized({"x-api-key": API_KEY}, API_KEY)
    assert not auth.request_is_authorized({"authorization": "Bearer nope"}, API_KEY)
    assert (API_KEY.encode(), API_KEY.encode()) in compared and (b"nope", API_KEY.encode()) in compared


def test_no_docs_pages_that_would_load_a_cdn(client) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    schema = client.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKeyHeader"}


def test_without_a_key_everything_is_open(filled_store: OutputsStore) -> None:
    open_client = make_client(filled_store, None, follow_redirects=False)
    assert open_client.get("/api/v1/runs").status_code == 200
    assert open_client.get("/").status_code == 200
    assert open_client.get("/login?next=/runs").headers["location"] == "/runs"


def test_resolve_api_key_reads_env_then_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VIPCAST_API_KEY", raising=False)
    monkeypatch.delenv("VIPCAST_API_KEY_FILE", raising=False)
    assert resolve_api_key(no_auth=True) is None
    with pytest.raises(ApiKeyMissing, match="VIPCAST_API_KEY"):
        resolve_api_key(no_auth=False)

    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    monkeypatch.setenv("VIPCAST_API_KEY_FILE", str(key_file))
    assert resolve_api_key(no_auth=False) == "from-file"
    monkeypatch.setenv("VIPCAST_API_KEY", "  from-env ")
    assert resolve_api_key(no_auth=False) == "from-env"

    monkeypatch.delenv("VIPCAST_API_KEY")
    key_file.write_text("   \n")
    with pytest.raises(ApiKeyMissing, match="empty"):
        resolve_api_key(no_auth=False)
    monkeypatch.setenv("VIPCAST_API_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ApiKeyMissing, match="cannot read"):
        resolve_api_key(no_auth=False)


def test_serving_without_a_key_is_only_allowed_on_loopback(filled_store: OutputsStore) -> None:
    with pytest.raises(ApiKeyMissing, match="0.0.0.0"):
        run("0.0.0.0", 8000, filled_store, None)
    # --no-auth turned a set key off: the refusal names it (it said "set VIPCAST_API_KEY", which was set).
    from app.server import NoAuthOffLoopback

    with pytest.raises(NoAuthOffLoopback, match="--no-auth is for local use; serve on 127.0.0.1, or leave --no-auth out"):
        run("0.0.0.0", 8000, filled_store, None, no_auth=True)


def test_a_short_key_is_refused_off_loopback(filled_store: OutputsStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """README's example key `change-me` served on 0.0.0.0: nine characters, and no lockout for guesses."""
    from app.server import WeakApiKey

    with pytest.raises(WeakApiKey, match="on 0.0.0.0 with an API key of 9 characters: .* 16 characters or more"):
        run("0.0.0.0", 8000, filled_store, "change-me")
    served = []
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, **options: served.append(host))
    monkeypatch.setattr("app.server.check_port_free", lambda host, port: None)
    run("127.0.0.1", 8000, filled_store, "change-me")  # this machine only: any key
    run("0.0.0.0", 8000, filled_store, "x" * 16)
    assert served == ["127.0.0.1", "0.0.0.0"]


def test_logs_name_routes_not_ids_or_queries(client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vipcast.app"):
        client.get("/api/v1/customers/1005?as_of=2026-11-16")
        client.get("/lists/rising-stars?tier=Gold")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /api/v1/customers/{customer_id} 200" in text
    assert "GET /lists/{list_name} 200" in text
    assert "1005" not in text and "Gold" not in text and "2026-11-16" not in text


def test_no_auth_says_the_lists_are_open(filled_store: OutputsStore, monkeypatch, capsys) -> None:
    """A configured key was dropped by --no-auth without a word."""
    import uvicorn

    import app.server as server

    monkeypatch.setattr(server, "check_port_free", lambda host, port: None)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    monkeypatch.setenv("VIPCAST_API_KEY", "k")
    run("127.0.0.1", 8000, filled_store, None, no_auth=True)
    assert ("warning: serving without an API key (--no-auth) (VIPCAST_API_KEY is set and not used): anyone who can "
            "open 127.0.0.1:8000 on this machine reads the lists") in capsys.readouterr().err


def test_without_a_key_only_requests_to_loopback_names_are_answered(filled_store: OutputsStore, monkeypatch) -> None:
    """`--no-auth` answered `Host: attacker.example` with the full at-risk list: a page the user opens can point
    its own name at 127.0.0.1 (DNS rebinding) and read every list."""
    import uvicorn
    from fastapi.testclient import TestClient

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    run("127.0.0.1", 18000, filled_store, None, no_auth=True)
    keyless = TestClient(served[0], base_url="http://127.0.0.1:18000")
    assert keyless.get("/api/v1/lists/at-risk").status_code == 200
    for host in ("localhost:18000", "127.0.0.1", "[::1]:18000", "127.0.0.2:18000", "LOCALHOST:18000", "localhost.:18000"):
        assert keyless.get("/api/v1/runs", headers={"host": host}).status_code == 200, host
    for host in ("attacker.example:18000", "attacker.example", "127.0.0.1.attacker.example", "[2001:db8::1]:18000", ""):
        refused = keyless.get("/api/v1/lists/at-risk?format=csv", headers={"host": host})
        assert refused.status_code == 400, host
        assert refused.json() == {"detail": "the Host header names another machine: this app, served without an API key, "
                                            "answers requests to localhost or 127.0.0.1 only"}
        assert refused.headers["x-frame-options"] == "DENY"
    # With a key, the key (or the session cookie, which the browser keeps per host name) guards the lists.
    run("127.0.0.1", 18000, filled_store, API_KEY)
    assert TestClient(served[1], headers={"X-API-Key": API_KEY}).get("/api/v1/runs").status_code == 200


def test_a_non_ascii_key_works_in_headers_as_in_the_login_form(filled_store: OutputsStore) -> None:
    """HTTP headers arrive as bytes read as Latin-1 and the key was compared as UTF-8: `clé-secrète-0123456789`
    was a 401 in X-API-Key and Authorization while the /login form accepted it."""
    key = "clé-secrète-0123456789"
    client = make_client(filled_store, key)
    raw = key.encode("utf-8")  # what curl -H "X-API-Key: $KEY" sends from a UTF-8 shell
    assert client.get("/api/v1/runs", headers=[(b"x-api-key", raw)]).status_code == 200
    assert client.get("/api/v1/runs", headers=[(b"authorization", b"Bearer " + raw)]).status_code == 200
    assert client.get("/api/v1/runs", headers=[(b"x-api-key", "clé-secrète-0123456780".encode())]).status_code == 401
    assert client.get("/api/v1/runs", headers=[(b"x-api-key", key.encode("latin-1"))]).status_code == 200  # the same text
