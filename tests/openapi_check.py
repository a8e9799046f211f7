"""The published schema in its OpenAPI 3 form, and a strict check of API responses against it.

/swagger.json (Swagger 2.0, what drf-yasg publishes) is converted once per test session with
swagger2openapi, the converter client authors use (tools/openapi, installed by
`make openapi-tools`), and validated by openapi-core, which checks each response's status
code, content type, declared headers and body. Stricter than a client needs: an object may not
carry a property the schema does not declare, so that the schema can never fall behind what
the server sends.

tests/conftest.py checks every response of the APIClient fixtures; tests/test_generated_client.py
checks the live server's answers and generates clients from the same document.
"""

import copy
import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from django.test import Client
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound, ServerNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

from booking_api.openapi import schema_nodes

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools" / "openapi"
SWAGGER2OPENAPI = TOOLS / "node_modules" / ".bin" / "swagger2openapi"
API_PREFIX = "/api/v1/"
# The host the checked requests are said to come from: the document's server is set to it.
HOST_URL = "http://api.test"


class SchemaToolsMissing(Exception):
    """node/npm is not installed: the OpenAPI 3 form cannot be made here."""


def node_missing_reason() -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm not installed: the schema cannot be converted to OpenAPI 3 (swagger2openapi)"
    return None


def swagger2openapi(swagger: dict) -> dict:
    """OpenAPI 3 form of a Swagger 2.0 document, by swagger2openapi, without its --patch
    option: a document that needs fixing to convert is an error."""
    if reason := node_missing_reason():
        raise SchemaToolsMissing(reason)
    if not SWAGGER2OPENAPI.exists():
        raise RuntimeError(f"{SWAGGER2OPENAPI} is missing: run `make openapi-tools` (npm ci in {TOOLS})")
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "swagger.json", Path(tmp) / "openapi.json"
        source.write_text(json.dumps(swagger))
        subprocess.run(
            [str(SWAGGER2OPENAPI), str(source), "--outfile", str(target)],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return json.loads(target.read_text())


@functools.cache
def published_swagger() -> dict:
    """/swagger.json as the server publishes it (Django's test client, no database needed)."""
    response = Client().get("/swagger.json")
    assert response.status_code == 200, response.content[:500]
    return response.json()


@functools.cache
def openapi3() -> dict:
    return swagger2openapi(published_swagger())


def strict(document: dict) -> dict:
    """A copy of `document` in which no object schema allows undeclared properties."""
    document = copy.deepcopy(document)
    for schema in document.get("components", {}).get("schemas", {}).values():
        for node in schema_nodes(schema):
            if node.get("type") == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
    document["servers"] = [{"url": HOST_URL + API_PREFIX.rstrip("/")}]
    return document


@functools.cache
def validator() -> OpenAPI:
    return OpenAPI.from_dict(strict(openapi3()))


def check(*, method: str, path: str, query: str, status: int, headers: dict, content_type: str, body: bytes) -> None:
    """Raise AssertionError unless this answer of the API is what the schema documents.

    A path with a trailing slash is the same operation as without (see urls.py). An answer
    on a route or method the schema does not list must be an error in the documented error
    shape (405 for a method a route lacks, 404 for an unknown URL)."""
    if not path.startswith(API_PREFIX):
        return
    if path.endswith("/"):
        path = path.rstrip("/")
    request = MockRequest(HOST_URL, method.lower(), path, args=_query_args(query))
    response = MockResponse(body, status_code=status, headers=headers, content_type=content_type or "")
    # validate_response, not unmarshal_response: the same checks, many times faster on a
    # seat map of thousands of seats.
    try:
        validator().validate_response(request, response)
        errors = []
    except (PathNotFound, OperationNotFound, ServerNotFound):
        errors = _check_undocumented_route(status, content_type, body)
    except OpenAPIError as error:
        errors = [error]
    if errors:
        details = "; ".join(_describe(error) for error in errors)
        raise AssertionError(
            f"{method.upper()} {path}{'?' + query if query else ''} -> {status}: the response does not "
            f"match the published schema: {details}\nbody: {body[:1000]!r}"
        )


def _query_args(query: str) -> dict:
    return dict(parse_qsl(query, keep_blank_values=True))


def _check_undocumented_route(status: int, content_type: str, body: bytes) -> list[Exception]:
    if status < 400:
        return [AssertionError("a success answer on a route or method the schema does not list")]
    if not (content_type or "").startswith("application/json"):
        return [AssertionError(f"an error answer that is not JSON ({content_type!r})")]
    schema = strict(openapi3())["components"]["schemas"]["Error"]
    return list(OAS30Validator(schema).iter_errors(json.loads(body)))


def _describe(error: Exception) -> str:
    causes = getattr(error, "__cause__", None)
    inner = getattr(causes, "schema_errors", None) or getattr(error, "schema_errors", None)
    if inner:
        return f"{error}: " + ", ".join(f"{list(e.absolute_path)}: {e.message}" for e in inner)
    return f"{type(error).__name__}: {error}" + (f" ({causes})" if causes else "")


def check_django(response) -> None:
    """check() for a response of Django's (or DRF's) test client."""
    request = response.wsgi_request
    headers = dict(response.items())
    check(
        method=request.method,
        path=request.path,
        query=request.META.get("QUERY_STRING", ""),
        status=response.status_code,
        headers=headers,
        content_type=response.get("Content-Type", ""),
        body=b"" if getattr(response, "streaming", False) else response.content,
    )


def check_httpx(response) -> None:
    """check() for an httpx response (an event hook: the body is read first)."""
    response.read()
    url = urlsplit(str(response.request.url))
    check(
        method=response.request.method,
        path=url.path,
        query=url.query,
        status=response.status_code,
        headers=dict(response.headers),
        content_type=response.headers.get("content-type", ""),
        body=response.content,
    )
