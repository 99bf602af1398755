"""Helpers for the Subsonic tests: validate an answer against the OpenSubsonic JSON schemas and
the Subsonic XSD, and make a listener with an API key and an app password.

`check(method, response)` picks the format from the response's content type and validates:
- JSON against the method's response schema (`openapi/methods.json` names it), which accepts the
  success shape or the failure shape;
- XML against the 1.16 XSD with OpenSubsonic's root attributes, for methods the XSD knows (the
  OpenSubsonic additions, e.g. getOpenSubsonicExtensions, have no XSD; their XML is only parsed).
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import xmlschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DATA = Path(__file__).resolve().parent / "data" / "opensubsonic"
OPENAPI = DATA / "openapi"
NS = "{http://subsonic.org/restapi}"
# Methods whose answers the 1.16 XSD does not define (OpenSubsonic additions).
NOT_IN_XSD = {"getOpenSubsonicExtensions", "tokenInfo", "getLyricsBySongId", "getPlayQueueByIndex"}


def _retrieve(uri: str) -> Resource[Any]:
    path = Path(uri.removeprefix("file://"))
    return Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT202012)


@functools.cache
def _registry() -> Registry[Any]:
    return Registry(retrieve=_retrieve)  # type: ignore[call-arg]


@functools.cache
def _json_validator(method: str) -> jsonschema.Validator:
    # methods.json: each method's response schema, read off the OpenAPI document's operations;
    # binary methods (stream, getCoverArt, ...) answer errors with the plain envelope.
    schemas: dict[str, str] = json.loads((OPENAPI / "methods.json").read_text())
    path = OPENAPI / schemas.get(method, "schemas/SubsonicResponse.json")
    schema = json.loads(path.read_text())
    schema["$id"] = path.as_uri()
    return jsonschema.Draft202012Validator(schema, registry=_registry())


@functools.cache
def _xsd() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(DATA / "subsonic-rest-api-1.16.0-os.xsd"))


def check_json(method: str, body: dict[str, Any]) -> dict[str, Any]:
    """Validates and returns `subsonic-response`."""
    errors = sorted(_json_validator(method).iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        worst = jsonschema.exceptions.best_match(errors)
        where = list(worst.absolute_path)
        raise AssertionError(f"{method}: JSON does not match the schema: {worst.message} at {where}")
    inner: dict[str, Any] = body["subsonic-response"]
    assert inner["openSubsonic"] is True and inner["type"] == "tonearm" and inner["serverVersion"]
    return inner


def check_xml(method: str, text: str | bytes) -> ElementTree.Element:
    """Validates (where the XSD knows the method) and returns the root element."""
    root = ElementTree.fromstring(text)  # noqa: S314 (our own server's answer in a test)
    assert root.tag == f"{NS}subsonic-response", root.tag
    assert root.get("openSubsonic") == "true" and root.get("type") == "tonearm"
    if method not in NOT_IN_XSD or root.get("status") == "failed":
        queue = root.find(f"{NS}playQueue")
        if queue is not None and "current" in queue.attrib:
            # The XSD's @current is an int (Subsonic's ids were numbers); ours is the song's id,
            # on purpose (see subsonic/handlers/queue.py). Everything else is validated.
            checked = ElementTree.fromstring(text)  # noqa: S314 (our own server's answer)
            del checked.find(f"{NS}playQueue").attrib["current"]  # type: ignore[union-attr]
            text = ElementTree.tostring(checked)
        _xsd().validate(text if isinstance(text, str) else text.decode())
    return root


def check(method: str, response: Any) -> Any:
    """Validates an httpx/requests response by its content type; returns the parsed answer."""
    assert response.status_code == 200, (response.status_code, response.text[:300])
    content_type = response.headers["content-type"]
    if content_type.startswith("application/json"):
        return check_json(method, response.json())
    assert content_type.startswith("text/xml"), content_type
    return check_xml(method, response.content)


def error_code(answer: Any) -> int | None:
    """The Subsonic error code of a checked answer (JSON dict or XML root), None if it succeeded."""
    if isinstance(answer, dict):
        return int(answer["error"]["code"]) if answer.get("status") == "failed" else None
    if answer.get("status") == "failed":
        err = answer.find(f"{NS}error")
        assert err is not None
        return int(err.get("code", "-1"))
    return None


def token_params(username: str, app_password: str) -> dict[str, str]:
    """Subsonic's token scheme: t = md5(password + salt) with a fresh salt."""
    salt = secrets.token_hex(6)
    token = hashlib.md5((app_password + salt).encode(), usedforsecurity=False).hexdigest()
    return {"u": username, "t": token, "s": salt, "v": "1.16.1", "c": "tests"}
