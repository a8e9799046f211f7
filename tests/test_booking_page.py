"""The booking page's view at `/`: the HTML shell with its CSP, its assets served by WhiteNoise
with DEBUG off (the production settings), and the routes around it unchanged. The page in a
browser: tests/test_booking_page_browser.py."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

from booking_api.views.page import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.django_db

STATIC_DIR = Path(settings.BASE_DIR) / "booking_api" / "static" / "booking_page"


class _Shell(HTMLParser):
    """The tags and attributes of the page, as a CSP-enforcing browser sees them."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def _shell(client: Client) -> tuple:
    response = client.get("/")
    parser = _Shell()
    parser.feed(response.content.decode())
    return response, parser


def test_the_page_is_html_with_a_strict_csp_and_debug_off():
    assert settings.DEBUG is False  # the production settings: no DEBUG static serving
    response, _ = _shell(Client())
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    csp = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in response["Content-Security-Policy"]
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_shell_has_nothing_inline_that_the_csp_would_block():
    _, shell = _shell(Client())
    assert shell.inline_scripts == []
    for tag, attrs in shell.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            # Same origin only (a path, a fragment or the empty data: favicon): the page works offline.
            assert not re.match(r"^(https?:)?//", value), (tag, attrs)
            assert not value.lower().startswith("javascript:"), (tag, attrs)
    scripts = [attrs for tag, attrs in shell.tags if tag == "script"]
    assert scripts == [{"type": "module", "src": "/static/booking_page/app.js"}]


def test_the_assets_are_served_with_debug_off():
    client = Client()
    _, shell = _shell(client)
    assets = [attrs["src"] for tag, attrs in shell.tags if tag == "script"]
    assets += [attrs["href"] for tag, attrs in shell.tags if tag == "link" and attrs.get("rel") == "stylesheet"]
    assert len(assets) == 2
    # app.js imports the other modules from the same directory.
    assets += [f"/static/booking_page/{module.name}" for module in STATIC_DIR.glob("*.js") if module.name != "app.js"]
    for url in assets:
        # WhiteNoise answers before Django's views: the files are the ones on disk.
        response = client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content)
        name = url.rsplit("/", 1)[1]
        assert body == (STATIC_DIR / name).read_bytes()
        expected = "text/javascript" if name.endswith(".js") else "text/css"
        assert response["Content-Type"].startswith(expected)
        # collectstatic (make run, the Dockerfile, the release process) finds them too.
        assert finders.find(f"booking_page/{name}")


def test_the_script_builds_the_page_without_html_from_strings():
    """Every text from the API reaches the page through textContent or an attribute: no
    innerHTML and friends, no eval, no inline handlers or styles written from script."""
    modules = sorted(STATIC_DIR.glob("*.js"))
    assert [m.name for m in modules] == ["account.js", "api.js", "app.js", "booking.js", "dom.js", "page.js", "show.js"]
    source = "\n".join(module.read_text() for module in modules)
    # The code without its comments (which may name what it avoids).
    script = re.sub(r"(^|\s)//.*$", "", re.sub(r"/\*.*?\*/", "", source, flags=re.S), flags=re.M)
    assert "addEventListener" in script
    assert "textContent" in script
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert forbidden not in script, forbidden
    assert not re.search(r"setAttribute\(\s*[\"']on", script)
    assert not re.search(r"setAttribute\(\s*[\"']style", script)
    # Only the public API: no other origin, no other path to the data.
    assert set(re.findall(r"https?://[^\s\"'`]+", script)) == set()
    assert 'const API = "/api/v1";' in script


def test_other_methods_are_a_json_405():
    client = Client(enforce_csrf_checks=True)
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/")
        assert response.status_code == 405, method
        assert response.json()["code"] == "method_not_allowed"
        assert response["Allow"] == "GET, HEAD"
    assert client.head("/").status_code == 200


def test_the_routes_around_the_page_are_unchanged(staff):
    client = Client()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/api/v1/movies").status_code == 200
    assert client.get("/swagger.json").status_code == 200
    assert client.get("/swagger/").status_code == 200
    assert client.get("/admin/").status_code == 302  # to the admin's login
    # Unknown paths stay the JSON 404, also right beside the page.
    for path in ("/index.html", "/page", "/static/booking_page/missing.js"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found", path
