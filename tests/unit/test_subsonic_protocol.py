"""The Subsonic envelope and parameters, without a server: XML escaping and shape, JSON, JSONP
callbacks, and every parameter error a client can cause."""

from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree

import orjson
import pytest

from tonearm.subsonic.protocol import Params, SubsonicError, encode, iso, to_json, to_xml

NS = "{http://subsonic.org/restapi}"


def parse(body: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(body)  # noqa: S314 (our own output)


def test_xml_shapes_scalars_dicts_lists_and_text() -> None:
    payload = {
        "album": {
            "id": "a1",
            "name": 'Tom & "Jerry" <live>',
            "starred": None,  # left out
            "isDir": False,
            "song": [{"id": "s1", "title": "One"}, {"id": "s2", "title": "Two\nlines"}],
        },
    }
    root = parse(to_xml(payload))
    assert root.tag == f"{NS}subsonic-response" and root.get("status") == "ok"
    assert root.get("openSubsonic") == "true" and root.get("version") == "1.16.1"
    album = root.find(f"{NS}album")
    assert album is not None
    assert album.get("name") == 'Tom & "Jerry" <live>' and album.get("isDir") == "false"
    assert "starred" not in album.attrib
    assert [s.get("title") for s in album.findall(f"{NS}song")] == ["One", "Two\nlines"]


def test_xml_text_content_and_text_elements() -> None:
    root = parse(
        to_xml(
            {
                "genres": {"genre": [{"songCount": 2, "value": "Rock & Roll"}]},
                "artistInfo": {"biography": "Born <1970>", "largeImageUrl": "http://x/a?b=1&c=2"},
                "playlist": {"id": "p", "allowedUser": ["ada", "bob"]},
            }
        )
    )
    genre = root.find(f"{NS}genres/{NS}genre")
    assert genre is not None and genre.text == "Rock & Roll" and genre.get("songCount") == "2"
    bio = root.find(f"{NS}artistInfo/{NS}biography")
    assert bio is not None and bio.text == "Born <1970>"
    assert [u.text for u in root.findall(f"{NS}playlist/{NS}allowedUser")] == ["ada", "bob"]


def test_xml_drops_characters_xml_cannot_carry() -> None:
    root = parse(to_xml({"song": {"id": "1", "title": "bell\x07 and nul\x00 here"}}))
    song = root.find(f"{NS}song")
    assert song is not None and song.get("title") == "bell and nul here"


def test_failed_envelopes_in_both_formats() -> None:
    err = {"error": {"code": 70, "message": "Album not found"}}
    root = parse(to_xml(err, failed=True))
    assert root.get("status") == "failed"
    assert root.find(f"{NS}error").get("code") == "70"  # type: ignore[union-attr]
    body = orjson.loads(to_json(err, failed=True))["subsonic-response"]
    assert body["status"] == "failed" and body["error"]["code"] == 70 and body["openSubsonic"] is True


def test_jsonp_callback_names_only() -> None:
    body, media_type = encode("jsonp", None, "app.cb_1")
    assert media_type == "application/javascript" and body.startswith(b"app.cb_1({")
    for evil in ("alert(1)", "x;y", "</script>", "a" * 300, ""):
        body, _ = encode("jsonp", None, evil)
        assert body.startswith(b"callback({"), evil


def test_iso_is_utc_with_milliseconds() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678_900, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert iso(when) == "2026-01-02T01:04:05.678Z"


def test_params_from_query_and_form_body() -> None:
    p = Params.parse("id=1&id=2&size=20&f=json&empty=", b"songIdToAdd=a&songIdToAdd=b&name=Mix%20%26%20more")
    assert p.all("id") == ["1", "2"] and p.all("songIdToAdd") == ["a", "b"]
    assert p.req("name") == "Mix & more" and p.int("size", 10) == 20
    assert p.opt("missing") is None and p.int("missing", 10) == 10 and p.all("empty") == []


@pytest.mark.parametrize(
    ("query", "call", "code"),
    [
        ("", lambda p: p.req("id"), 10),
        ("id=", lambda p: p.req("id"), 10),
        ("size=abc", lambda p: p.int("size", 10), 0),
        ("size=-1", lambda p: p.int("size", 10), 0),
        ("size=1&size=2", lambda p: p.int("size", 10), 0),
        ("public=maybe", lambda p: p.bool("public", False), 0),
        ("", lambda p: p.int("count"), 10),
    ],
)
def test_parameter_errors(query: str, call: object, code: int) -> None:
    with pytest.raises(SubsonicError) as err:
        call(Params.parse(query))  # type: ignore[operator]
    assert err.value.code == code


def test_huge_counts_are_clamped_and_repeats_of_one_value_are_fine() -> None:
    p = Params.parse("size=99999999999999999999&count=5&count=5")
    assert p.int("size", 10, hi=500) == 500
    assert p.int("count", 10) == 5
    assert p.bool("x", True) is True and Params.parse("x=FALSE").bool("x", True) is False
