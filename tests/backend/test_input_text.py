"""What text a post may hold: Unicode characters, no control characters but newline and tab in a
body, and a title a reader can see. Anything else is a 422 naming the field, never a 500."""

import json

import pytest

from .test_errors import assert_error

VALID = {"title": "a title", "body": "a body"}


def post_raw(writer, data: bytes):
    return writer.post("/api/posts", data=data, content_type="application/json")


@pytest.mark.parametrize(
    "field,escaped",
    [
        ("title", r"\ud800"),
        ("title", r"\udc00\ud800"),  # a pair in the wrong order is two lone surrogates
        ("body", r"\ud800"),
        ("body", r"x\udfffy"),
    ],
)
def test_lone_surrogate_is_422_naming_the_field(writer, field, escaped):
    document = {**VALID, field: "PLACEHOLDER"}
    data = json.dumps(document).replace("PLACEHOLDER", escaped).encode()
    response = post_raw(writer, data)
    assert assert_error(response, 422, "validation_failed")["field"] == field


def test_lone_surrogate_in_an_update_is_422(writer):
    post = writer.post("/api/posts", json=VALID).get_json()
    data = b'{"title": "t", "body": "\\ud800"}'
    response = writer.put(f"/api/posts/{post['id']}", data=data, content_type="application/json")
    assert assert_error(response, 422, "validation_failed")["field"] == "body"


def test_cesu8_bytes_are_422_not_a_crash(writer):
    # U+D800 encoded as if it were a character (CESU-8): not UTF-8, yet Python's JSON reads it.
    response = post_raw(writer, b'{"title": "t", "body": "\xed\xa0\x80"}')
    assert response.status_code in (400, 422)
    assert response.get_json()["error"] in ("malformed_json", "validation_failed")


@pytest.mark.parametrize(
    "title",
    ["\u200b", "\ufeff", "\u2060", "\u3164", " \u200b\t", "\u2800", "\u115f\u1160"],
    ids=["zero-width-space", "bom", "word-joiner", "hangul-filler", "mixed", "braille-blank",
         "hangul-choseong-fillers"],
)  # fmt: skip
def test_title_that_is_empty_to_a_reader_is_422(writer, title):
    response = writer.post("/api/posts", json={**VALID, "title": title})
    assert assert_error(response, 422, "validation_failed")["field"] == "title"


# Unicode's Default_Ignorable_Code_Point characters render as nothing on their own, whatever their
# category: variation selectors and Mongolian ones are combining marks (Mn), not format characters.
@pytest.mark.parametrize(
    "title",
    ["\ufe0f", "\ufe0e\ufe0f", "\U000e0100", "\u180b", "\u034f", "\u17b4", " \ufe0f\u200b"],
    ids=["vs16", "vs15-vs16", "vs17", "mongolian-fvs1", "grapheme-joiner", "khmer-inherent-aq",
         "mixed"],
)  # fmt: skip
def test_title_of_only_default_ignorable_characters_is_422(writer, title):
    response = writer.post("/api/posts", json={**VALID, "title": title})
    assert assert_error(response, 422, "validation_failed")["field"] == "title"


def test_title_with_a_visible_character_beside_ignorable_ones_is_accepted(writer):
    title = "\u2764\ufe0f \u200b"  # red heart, emoji presentation
    response = writer.post("/api/posts", json={**VALID, "title": title})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["title"] == title


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9b", "\n", "\t"])
def test_control_characters_are_refused_in_a_title(writer, char):
    response = writer.post("/api/posts", json={**VALID, "title": f"a{char}b"})
    assert assert_error(response, 422, "validation_failed")["field"] == "title"


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9b", "\r"])
def test_control_characters_other_than_newline_and_tab_are_refused_in_a_body(writer, char):
    response = writer.post("/api/posts", json={**VALID, "body": f"a{char}b"})
    assert assert_error(response, 422, "validation_failed")["field"] == "body"


def test_newlines_tabs_bidi_and_emoji_are_text(writer):
    title = "Émoji 🎉 و שלום \u202eRTL\u202c"
    body = "line one\n\tindented line two 漢字 \u2067isolate\u2069"
    response = writer.post("/api/posts", json={"title": title, "body": body})
    assert response.status_code == 201, response.get_json()
    assert (response.get_json()["title"], response.get_json()["body"]) == (title, body)


@pytest.mark.parametrize(
    "path",
    [
        "/api/posts/%EF%BC%91",  # fullwidth 1
        "/api/posts/%D9%A1",  # Arabic-Indic 1
        "/api/posts/%F0%9D%9F%8F",  # mathematical bold 1
        "/api/posts/%E0%A5%A7",  # Devanagari 1
        "/api/posts/0000000001",
        "/api/posts/01",
        "/api/posts/0",
        "/api/posts/+1",
        "/api/posts/2147483648",
        "/api/posts/99999999999",
    ],
)
def test_post_ids_are_canonical_ascii_digits_anything_else_is_404(writer, path):
    post = writer.post("/api/posts", json=VALID).get_json()
    assert post["id"] >= 1
    for method in ("GET", "PUT", "DELETE"):
        response = writer.open(path, method=method, json=VALID)
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize("separator", ["%2F", "%2f"])
def test_encoded_slash_is_not_a_path_separator_so_no_route_is_404(writer, separator):
    post = writer.post("/api/posts", json=VALID).get_json()
    path = f"/api/posts{separator}{post['id']}"
    for method in ("GET", "PUT", "DELETE"):
        response = writer.open(path, method=method, json={**VALID, "title": "changed"})
        assert_error(response, 404, "not_found")
    assert writer.get(f"/api/posts/{post['id']}").get_json() == post


def test_canonical_id_still_reaches_its_post(writer):
    post = writer.post("/api/posts", json=VALID).get_json()
    assert writer.get(f"/api/posts/{post['id']}").get_json() == post
