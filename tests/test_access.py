"""Who may read what, against a real `qa serve` with QA_AUTH and QA_API_TOKEN set: no file outside
Gradio's upload cache is served, whatever the route or the spelling of the path; every API route
wants the token (or the login) and works with it; every Gradio route wants the login, bar the
public ones named here; the server listens on loopback only.

Paths are sent byte for byte with http.client: httpx would resolve "../" before sending.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import secrets
import time
from pathlib import Path
from urllib.parse import quote, urlparse

import httpx
import pytest

from tests.conftest import ROOT, SEED_ID
from tests.serving import ingest_seeds, qa_serve

LOGIN = ("tester", "s3cret")
TOKEN = f"tok-{secrets.token_hex(8)}"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
BASIC = {"Authorization": "Basic " + base64.b64encode(":".join(LOGIN).encode()).decode()}
ENV_SECRET = f"ENV-SECRET-{secrets.token_hex(6)}"
SEED_QUESTION = "What did the 2+2 statement say about Taiwan?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("access")
    (folder / ".env").write_text(f"QA_API_TOKEN={ENV_SECRET}\n")
    # torch, named: the other servers build int8 indexes (the default); this one covers torch's
    with qa_serve(folder, QA_AUTH=":".join(LOGIN), QA_API_TOKEN=TOKEN, QA_EMBED_BACKEND="torch") as url:
        ingest_seeds(url, **BEARER)
        yield url, folder


def test_a_torch_server_moves_questions_to_onnxruntime_fp32_once_loaded(server):
    """Questions on a torch index go through the same model exported to onnxruntime fp32
    (same vectors, faster), loaded in the background after the server starts."""
    health = httpx.get(f"{server[0]}/api/health", timeout=10).json()
    deadline = time.time() + 120
    while health["question_encoder"] == "torch" and time.time() < deadline:
        time.sleep(1)
        health = httpx.get(f"{server[0]}/api/health", timeout=10).json()
    assert health["embed_backend"] == "torch" and health["question_encoder"] == "onnxruntime fp32"
    answer = httpx.post(f"{server[0]}/api/ask", json={"question": SEED_QUESTION}, headers=BEARER, timeout=60).json()
    assert "Taiwan Strait" in answer["answer"]


@pytest.fixture(scope="module")
def cookie(server) -> str:
    """The UI's login, as the Cookie header a logged-in browser sends."""
    with httpx.Client(base_url=server[0], timeout=30) as client:
        assert client.post("/login", data={"username": LOGIN[0], "password": LOGIN[1]}).status_code == 200
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def raw(url: str, method: str, path: str, headers: dict | None = None, body: bytes | None = None) -> tuple[int, bytes]:
    """One request with `path` exactly as given (no normalising of ../ or %2e)."""
    parts = urlparse(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# --- files outside the app's folders -----------------------------------------------------------

@pytest.fixture(scope="module")
def uploaded(server, cookie) -> str:
    """A file uploaded through Gradio, named to climb out of its cache: where it landed."""
    response = httpx.post(f"{server[0]}/gradio_api/upload", headers={"Cookie": cookie}, timeout=30,
                          files={"files": ("../../../../../../tmp/climbed-out.txt", b"uploaded on purpose")})
    assert response.status_code == 200, response.text
    [path] = response.json()
    return path


def test_an_upload_stays_in_the_cache_and_is_served_from_there(server, cookie, uploaded):
    assert Path(uploaded).name == "climbed-out.txt" and not Path("/tmp/climbed-out.txt").exists()
    for route in ("/gradio_api/file=", "/gradio_api/file/"):  # the routes work: what they refuse below is refused
        status, body = raw(server[0], "GET", route + uploaded, {"Cookie": cookie})
        assert (status, body) == (200, b"uploaded on purpose"), route


def test_uploaded_html_and_svg_are_served_as_downloads_never_as_pages(server, cookie):
    files = [("files", ("page.html", b"<script>alert(1)</script>", "text/html")),
             ("files", ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/svg+xml"))]
    paths = httpx.post(f"{server[0]}/gradio_api/upload", headers={"Cookie": cookie}, files=files, timeout=30).json()
    for path in paths:
        response = httpx.get(f"{server[0]}/gradio_api/file={path}", headers={"Cookie": cookie}, timeout=30)
        assert response.status_code == 200
        assert response.headers["content-disposition"].startswith("attachment"), path
        assert response.headers["content-type"] == "application/octet-stream"


def targets(folder: Path) -> dict[str, tuple[str, bytes]]:
    """Files the server can read and must never serve: (absolute path, bytes that show it was served)."""
    found = {
        "passwd": ("/etc/passwd", b"root:"),
        "ledger": (str(folder / "data" / "ledger.sqlite"), b"SQLite format 3"),
        "chroma": (str(folder / "data" / "chroma" / "chroma.sqlite3"), b"SQLite format 3"),
        "dotenv": (str(folder / ".env"), ENV_SECRET.encode()),
        "environ": ("/proc/self/environ", TOKEN.encode()),  # the server's own environment holds the token
        "log": (str(folder / "serve.log"), b"News QA on http"),
        "project": (str(ROOT / "pyproject.toml"), b"[project]"),
    }
    for name, (path, _) in found.items():
        assert Path(path).exists(), name  # a refusal must be a refusal, not a missing file
    return found


def case_varied(path: str) -> str:
    return "/".join(part.upper() if i % 2 else part.capitalize() for i, part in enumerate(path.split("/")))


def variants(path: str, upload_dir: str) -> dict[str, str]:
    """Ways to spell `path` so that a careless check lets it through."""
    climb = "../" * 16 + path.lstrip("/")
    from_upload = f"{upload_dir}/{climb}"
    encoded = quote(climb, safe="").replace(".", "%2e")
    return {
        "absolute": path,
        "relative to the server's folder": os.path.relpath(path, os.getcwd()),
        "../ from the root": climb,
        "../ out of the upload cache": from_upload,
        "%2e%2e%2f": encoded,
        "%2e%2e%2f out of the upload cache": quote(from_upload, safe="").replace(".", "%2e"),
        "double-encoded %252e%252e%252f": encoded.replace("%", "%25"),
        "overlong UTF-8 %c0%ae": ("%c0%ae%c0%ae%c0%af" * 16) + quote(path.lstrip("/")),
        "backslashes ..%5c": ("..%5c" * 16) + quote(path.lstrip("/").replace("/", "\\")),
        "case-varied": case_varied(path),
        "doubled slashes": "/" + path.replace("/", "//"),
        "dot segments": "/./".join(path.split("/")),
        "null byte": quote(path) + "%00.txt",
        "file: URL": "file://" + path,
        "upload cache prefix, no separator": f"{upload_dir}/..{path}",
    }


FILE_ROUTES = ["/gradio_api/file=", "/gradio_api/file/", "/file=", "/static/", "/assets/", "/svelte/", "/api/static-docs/"]


@pytest.mark.parametrize("route", FILE_ROUTES)
def test_no_file_outside_the_upload_cache_is_served(server, cookie, uploaded, route):
    url, folder = server
    upload_dir = str(Path(uploaded).parent)
    served, tried = [], 0
    for name, (path, marker) in targets(folder).items():
        for kind, spelled in variants(path, upload_dir).items():
            for method in ("GET", "HEAD") if route == "/gradio_api/file=" else ("GET",):
                status, body = raw(url, method, route + spelled, {"Cookie": cookie})  # logged in: the strongest case
                tried += 1
                if not 400 <= status < 500 or marker in body:
                    served.append((name, kind, method, status, body[:80]))
    assert tried >= 100 and served == [], served


def test_gradio_fetches_no_loopback_url_for_a_client(server, cookie):
    """/gradio_api/file=<url> and /proxy= would let a client reach what only the server can (SSRF)."""
    url, folder = server
    for target in (f"{url}/api/documents", "http://127.0.0.1:1/", "http://localhost/etc/passwd", "file:///etc/passwd"):
        for route in ("/gradio_api/file=", "/gradio_api/proxy="):
            status, body = raw(url, "GET", route + target, {"Cookie": cookie, **BEARER})
            assert 400 <= status < 500 and SEED_ID.encode() not in body and b"root:" not in body, (route, target, status)


def test_without_the_login_the_file_routes_answer_401(server, uploaded):
    for route in ("/gradio_api/file=", "/gradio_api/file/"):
        status, body = raw(server[0], "GET", route + uploaded)
        assert status == 401 and b"uploaded on purpose" not in body


# --- the API: every route wants credentials ---------------------------------------------------

OPEN_API_ROUTES = {("GET", "/api/health")}  # liveness for load balancers: counts only
WRONG_CREDENTIALS = {
    "none": {},
    "wrong token": {"Authorization": "Bearer not-the-token"},
    "token without Bearer": {"Authorization": TOKEN},
    "wrong password": {"Authorization": "Basic " + base64.b64encode(b"tester:wrong").decode()},
    "empty basic": {"Authorization": "Basic"},
    "garbage basic": {"Authorization": "Basic %%%notbase64"},
}


def api_routes(url: str) -> list[tuple[str, str]]:
    spec = httpx.get(f"{url}/api/openapi.json", timeout=30).json()
    return sorted((method.upper(), path) for path, methods in spec["paths"].items() for method in methods)


def filled(path: str, doc_id: str = SEED_ID) -> str:
    return re.sub(r"\{doc_id(:path)?\}", quote(doc_id), re.sub(r"\{(?!doc_id)[^}]+\}", "x", path))


def request_for(method: str, path: str, doc_id: str = SEED_ID) -> dict:
    """A request that the route would carry out: a real question, a real file, a stored article."""
    if path == "/api/ingest":
        return {"files": {"files": ("access-probe.txt", b"Access probe\n\nThe probe article exists to be deleted.\n")}}
    if path in ("/api/ask", "/api/search"):
        return {"json": {"question": SEED_QUESTION}}
    if path == "/v1/chat/completions":
        return {"json": {"model": "news-qa", "messages": [{"role": "user", "content": SEED_QUESTION}]}}
    return {"json": {}} if method in ("POST", "PUT", "PATCH") else {}


def test_the_api_routes_are_the_ones_described(server):
    routes = api_routes(server[0])
    assert {("POST", "/api/ask"), ("POST", "/api/ingest"), ("DELETE", "/api/documents/{doc_id}"),
            ("POST", "/v1/chat/completions"), ("GET", "/v1/models")} <= set(routes)


@pytest.mark.parametrize("credentials", WRONG_CREDENTIALS)
def test_every_api_route_refuses_without_the_right_credentials(server, credentials):
    url, _ = server
    before = httpx.get(f"{url}/api/documents", headers=BEARER, timeout=30).json()
    refused = 0
    for method, path in api_routes(url):
        if (method, path) in OPEN_API_ROUTES:
            continue
        response = httpx.request(method, url + filled(path), headers=WRONG_CREDENTIALS[credentials], timeout=60,
                                 **request_for(method, path))
        assert response.status_code == 401, (method, path, response.status_code, response.text[:200])
        assert response.headers.get("www-authenticate") == "Bearer"
        assert SEED_ID not in response.text and "Taiwan" not in response.text
        refused += 1
    assert refused >= 7
    assert httpx.get(f"{url}/api/documents", headers=BEARER, timeout=30).json() == before  # nothing ingested or deleted


# Routes this test knows how to call for real; any other must at least get past the token check.
KNOWN_API_ROUTES = {("GET", "/api/health"), ("POST", "/api/ask"), ("POST", "/api/search"), ("POST", "/api/ingest"),
                    ("GET", "/api/documents"), ("GET", "/api/documents/{doc_id}"), ("DELETE", "/api/documents/{doc_id}"),
                    ("GET", "/v1/models"), ("POST", "/v1/chat/completions")}


def test_every_api_route_works_with_the_token_and_with_the_login(server):
    url, _ = server
    routes = api_routes(url)
    order = sorted(routes, key=lambda route: route[0] == "DELETE")  # ingest the probe before deleting it
    for method, path in order:
        doc_id = "access-probe.txt" if method == "DELETE" else SEED_ID
        response = httpx.request(method, url + filled(path, doc_id), headers=BEARER, timeout=300, **request_for(method, path, doc_id))
        if (method, path) in KNOWN_API_ROUTES:
            assert response.status_code == 200, (method, path, response.status_code, response.text[:300])
        else:
            assert response.status_code not in (401, 403) and response.status_code < 500, (method, path, response.status_code)
    assert "access-probe.txt" not in httpx.get(f"{url}/api/documents", headers=BASIC, timeout=30).text
    answer = httpx.post(f"{url}/api/ask", json={"question": SEED_QUESTION}, headers=BASIC, timeout=300).json()
    assert answer["citations"] and "Taiwan Strait" in answer["answer"]  # QA_AUTH's login works as basic auth


def test_health_stays_open_and_tells_only_counts(server):
    response = httpx.get(f"{server[0]}/api/health", timeout=30)
    assert response.status_code == 200 and response.json()["articles"] >= 1
    assert TOKEN not in response.text and LOGIN[1] not in response.text


# --- the UI: every Gradio route wants the login, bar the public ones --------------------------

# Gradio routes that answer without a login, and why that is safe: they serve the login page
# and its assets, or act only on an id that only the session holding it knows.
PUBLIC_GRADIO_ROUTES = {
    "/", "/login", "/login/", "/logout", "/favicon.ico", "/theme.css", "/robots.txt", "/manifest.json", "/pwa_icon",
    "/pwa_icon/{size}", "/svelte/{path}", "/static/{path}", "/assets/{path}", "/gradio_api/theme.css",
    "/gradio_api/user", "/gradio_api/user/", "/gradio_api/token", "/gradio_api/token/",  # who the caller is: nobody
    "/gradio_api/app_id", "/gradio_api/app_id/", "/gradio_api/startup-events",
    "/gradio_api/cancel", "/gradio_api/reset", "/gradio_api/reset/",  # by event id and session hash, unguessable
    "/gradio_api/login_check", "/gradio_api/login_check/",
    "/gradio_api/heartbeat/{session_hash}",  # sends "ALIVE" to keep a session (known only to it) open
}
REFUSED = {401, 403, 404, 405, 422}


def gradio_routes(url: str) -> list[tuple[str, str]]:
    """Every route Gradio mounts, from the description it publishes at /openapi.json."""
    spec = httpx.get(f"{url}/openapi.json", timeout=30).json()
    return sorted((method.upper(), path) for path, methods in spec["paths"].items() for method in methods)


def probe(method: str, url: str, body: dict | None) -> tuple[int, str]:
    """The status and the start of the body; an event stream is read for a moment, not to its end."""
    received = b""
    try:
        with httpx.stream(method, url, json=body, timeout=httpx.Timeout(30, read=3)) as response:
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) > 200_000:
                    break
    except httpx.ReadTimeout:
        pass
    return response.status_code, received.decode(errors="replace")


def test_every_gradio_route_wants_the_login(server):
    url, _ = server
    routes = gradio_routes(url)
    assert ("POST", "/gradio_api/queue/join") in routes and ("GET", "/gradio_api/file={path_or_url}") in routes
    leaked = []
    for method, path in routes:
        target = re.sub(r"\{[^}]+\}", "x", path).replace("api/x", "api/ask").replace("call/x", "call/ask").replace("run/x", "run/ask")
        # A question whose words are not in the seed: what comes back is not an echo of the request.
        body = {"data": ["Who met whom?", 5], "fn_index": 0, "session_hash": "x", "event_id": "x"} if method == "POST" else None
        status, text = probe(method, url + target, body)
        if "Taiwan" in text or SEED_ID in text or "Japan-U.S." in text:
            leaked.append((method, path, "app data"))
        elif path not in PUBLIC_GRADIO_ROUTES and status not in REFUSED:
            leaked.append((method, path, status))
    assert len(routes) >= 50 and leaked == [], leaked


def test_with_the_login_the_ui_and_its_api_work(server, cookie):
    url, _ = server
    for path in ("/config", "/gradio_api/info"):
        assert httpx.get(url + path, timeout=30).status_code == 401
        assert httpx.get(url + path, headers={"Cookie": cookie}, timeout=30).status_code == 200
    info = httpx.get(url + "/gradio_api/info", headers={"Cookie": cookie}, timeout=30).json()
    assert "/ask" in info["named_endpoints"]


# --- where it listens -------------------------------------------------------------------------

def listening_addresses(port: int) -> set[str]:
    """The local addresses sockets LISTEN on for `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                raw_bytes = bytes.fromhex(address)
                words = [raw_bytes[i : i + 4][::-1] for i in range(0, len(raw_bytes), 4)]  # little-endian words
                found.add(__import__("ipaddress").ip_address(b"".join(words)).compressed)
    return found


def test_the_server_listens_on_loopback_only(server):
    port = urlparse(server[0]).port
    assert listening_addresses(port) == {"127.0.0.1"}


def test_loopback_is_the_default():
    from qa.settings import Settings
    from ui.server import _loopback

    assert Settings().host == "127.0.0.1"
    assert all(_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "127.0.0.2"))
    assert not any(_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.com"))
