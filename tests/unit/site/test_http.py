"""The served site at the HTTP level: bad requests, methods, headers, logs, floods."""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from coop100.site.http import ALLOWED_METHODS, SECURITY_HEADERS
from tests.site_fixtures import DATABASE

# Each a request Datasette 0.65 answered with a 500 (and a traceback in the log),
# or with 200 for a method a read-only site has no use for.
BAD_REQUESTS = [
    ("GET", f"/{DATABASE}/statements?_sort=nosuch", 400),
    ("GET", f"/{DATABASE}/statements?_sort_desc=nosuch", 400),
    ("GET", f"/{DATABASE}/statements?_sort=type&_sort_desc=type", 400),
    ("GET", f"/{DATABASE}/statements.json?_sort=" + "x" * 5000, 400),
    ("GET", f"/{DATABASE}/statements_detailed?_next=garbage", 400),
    ("GET", f"/{DATABASE}/current_affiliations.json?_next=-1", 400),
    ("GET", f"/{DATABASE}/statements?paragraph__in=[1,", 400),
    ("GET", f"/{DATABASE}/statements?paragraph__notin=[[1]]", 400),
    ("GET", f"/{DATABASE}/statements?_timelimit=abc", 400),
    ("GET", f"/{DATABASE}/statements?_through=abc", 400),
    ("GET", f"/{DATABASE}/statements?_through=%7B%7D", 400),
    ("GET", f"/{DATABASE}/statements?_facet=%7Bx", 400),
    ("GET", f"/{DATABASE}/statements?_where=randomblob(1000000000)", 400),
    ("GET", f"/{DATABASE}/statements?_where=nosuch", 400),
    ("GET", f"/{DATABASE}/statements?%00=1", 400),
    ("GET", f"/{DATABASE}/statements?type=%00", 400),
    ("GET", f"/{DATABASE}.json?sql=select+1%00", 400),
    ("GET", f"/{DATABASE}/statements?paragraph__gt=99999999999999999999", 400),
    ("GET", f"/{DATABASE}/statements?paragraph__lt=%C2%B2", 400),
    ("GET", f"/{DATABASE}/statements?_facet=%7B" + "%5B" * 5000, 400),
    ("GET", f"/{DATABASE}.csv", 400),
    ("GET", f"/{DATABASE}.csv?sql=", 400),
    ("GET", f"/{DATABASE}/statements.blob?_blob_column=text&_blob_hash=x", 400),
    ("GET", f"/{DATABASE}/statements.blob?_blob_column=text&type=nosuch", 404),
    ("GET", f"/{DATABASE}.db.json", 404),
    ("GET", "/nosuch", 404),
    ("GET", f"/{DATABASE}/nosuch", 404),
    ("GET", "/data/" + "x" * 300, 404),
    ("GET", "/" + "x" * 3000, 414),
    ("TRACE", "/", 405),
    ("POST", "/", 405),
    ("PUT", "/data/datapackage.json", 405),
    ("DELETE", f"/{DATABASE}/statements", 405),
    ("PATCH", "/", 405),
]
REFUSED_METHODS = ["POST", "PUT", "DELETE", "PATCH", "TRACE", "PROPFIND"]
METHOD_PATHS = [
    "/",
    f"/{DATABASE}",
    f"/{DATABASE}/statements",
    f"/{DATABASE}/statements/-/insert",
    "/data/datapackage.json",
    "/-/messages",
    "/-/logout",
]
HTML_PAGES = [
    "/",
    f"/{DATABASE}",
    f"/{DATABASE}/statements",
    f"/{DATABASE}/statements_detailed",
    f"/{DATABASE}/people/ilo-guy-ryder",
    f"/{DATABASE}?sql=select+1",
    "/nosuch",
]
# What uvicorn writes for one request: the access log line.
ACCESS_LINE = re.compile(r'^INFO: +127\.0\.0\.1:\d+ - "[A-Z]+ \S+ HTTP/1\.1" \d{3}( [\w -]+)?$')
SHORT = 2000


def _request(base: str, method: str, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def _log_lines(site_root: Path) -> list[str]:
    return (site_root / "build" / "serve.log").read_text(errors="replace").splitlines()


def _new_lines(site_root: Path, before: int, expected: int) -> list[str]:
    """The log's lines after the first `before`, once `expected` of them have arrived."""
    deadline = time.monotonic() + 10
    lines = _log_lines(site_root)[before:]
    while len(lines) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        lines = _log_lines(site_root)[before:]
    time.sleep(0.2)  # anything written past the expected lines shows up too
    return _log_lines(site_root)[before:]


def test_bad_requests_get_a_short_4xx_and_one_log_line_each(served, site_root):
    base, _ = served
    before = len(_log_lines(site_root))
    answers = {}
    for method, path, _ in BAD_REQUESTS:
        status, _, body = _request(base, method, path)
        answers[(method, path)] = status
        text = body.decode(errors="replace")
        assert len(body) < SHORT, (method, path, text[:300])
        assert "Traceback" not in text and str(site_root) not in text, (method, path, text)
    assert answers == {(method, path): status for method, path, status in BAD_REQUESTS}
    lines = _new_lines(site_root, before, len(BAD_REQUESTS))
    assert [line for line in lines if not ACCESS_LINE.match(line)] == []
    assert len(lines) == len(BAD_REQUESTS)


@pytest.mark.parametrize("path", METHOD_PATHS)
def test_only_get_head_and_options_are_allowed(served, path):
    base, _ = served
    allow = ", ".join(ALLOWED_METHODS)
    answers = {method: _request(base, method, path)[:2] for method in REFUSED_METHODS}
    assert {m: (status, headers.get("Allow")) for m, (status, headers) in answers.items()} == {
        method: (405, allow) for method in REFUSED_METHODS
    }
    status, headers, body = _request(base, "OPTIONS", path)
    assert (status, headers.get("Allow"), body) == (204, allow, b"")


def test_head_answers_like_get_without_a_body(served):
    base, _ = served
    status, headers, body = _request(base, "HEAD", "/")
    assert (status, body) == (200, b"")
    assert headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", HTML_PAGES)
def test_pages_send_security_headers_that_allow_their_own_scripts(served, path):
    base, _ = served
    status, headers, body = _request(base, "GET", path)
    assert status in (200, 404)
    assert headers["Content-Type"].startswith("text/html")
    assert {name: headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    policy = dict(
        (part.strip().split(" ", 1) + [""])[:2]
        for part in headers["Content-Security-Policy"].split(";")
    )
    assert policy["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in policy["script-src"]
    for script in re.findall(r"<script>(.*?)</script>", body.decode(), re.S):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"], script[:200]


def test_both_hooks_are_registered(client):
    # Each of coop100's entry points (pyproject.toml) is listed under the project's name.
    plugins = client.json("/-/plugins.json")
    hooks = {hook for p in plugins if p["name"] == "coop100" for hook in p["hooks"]}
    assert {"asgi_wrapper", "handle_exception", "register_output_renderer"} <= set(hooks)


def test_a_flood_of_bad_requests_leaves_the_site_answering(served, site_root):
    """While 4 clients ask for missing pages, the landing page still answers within 5 s."""
    base, _ = served
    stop = threading.Event()
    flooded = []

    def flood() -> None:
        while not stop.is_set():
            flooded.append(_request(base, "GET", f"/{DATABASE}/nosuch?_sort=x")[0])

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        for _ in range(5):
            began = time.monotonic()
            assert _request(base, "GET", "/")[0] == 200
            # An availability bound, generous for a loaded CI machine.
            assert time.monotonic() - began < 5
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert set(flooded) == {404}


# Parameters that are wrong on every table and view page, whatever its columns.
WRONG_EVERYWHERE = [
    "_sort=nosuch",
    "_sort_desc=nosuch",
    "_next=~~~",
    "_facet=%7B%7D",
    "_timelimit=x",
    "nosuch__gt=99999999999999999999",
    "nosuch__in=%5B1,",
]


def test_every_table_and_view_refuses_bad_parameters(served, client):
    base, _ = served
    listing = client.json(f"/{DATABASE}.json")
    names = [t["name"] for t in listing["tables"] if not t["hidden"]]
    names += [v["name"] for v in listing["views"]]
    answers = {}
    for name in names:
        for fmt in ("", ".json", ".csv"):
            for query in WRONG_EVERYWHERE:
                path = f"/{DATABASE}/{urllib.parse.quote(name)}{fmt}?{query}"
                answers[path] = _request(base, "GET", path)[0]
    assert len(names) >= 10
    # `_next=~~~` is a keyset cursor on a table (no row follows it: 200), an offset on a view.
    assert {path: status for path, status in answers.items() if status >= 500} == {}


def test_an_unforeseen_error_is_a_500_with_one_line_of_log(client, caplog):
    """The last resort: a bare 500 for the visitor, one log line naming the code for us."""
    from datasette.utils.asgi import Request

    from coop100.site.http import _exception_response

    try:
        raise RuntimeError("secret at /srv/coop100")
    except RuntimeError as exc:
        error = exc
    request = Request.fake(f"/{DATABASE}/statements.json")
    with caplog.at_level("ERROR"):
        response = client.loop.run_until_complete(_exception_response(client.ds, request, error))
    assert (response.status, response.body) == (
        500,
        '{"ok": false, "error": "Internal error", "status": 500, "title": null}',
    )
    assert [r.getMessage().splitlines() for r in caplog.records] == [
        [
            f"GET '/{DATABASE}/statements.json': RuntimeError 'secret at /srv/coop100' "
            f"at test_http.py:{error.__traceback__.tb_lineno}"
        ]
    ]
