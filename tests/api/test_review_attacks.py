"""Review attacks on the REST API's JSON door."""

from __future__ import annotations

import pytest


def _tool(maximum: str) -> str:
    return (
        '{"name": "lookup", "description": "Look it up.", "url": "https://93.184.216.34/x", "parameters": '
        f'{{"type": "object", "properties": {{"n": {{"type": "number", "maximum": {maximum}}}}}}}}}'
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("maximum", "status"), [("NaN", 400), ("Infinity", 400), ("-1e400", 400), ("5.5", 201)])
def test_a_non_finite_number_in_a_tools_schema_is_a_400(alpha_api, maximum, status):
    response = alpha_api.post("/api/v1/tools/", _tool(maximum), content_type="application/json")

    assert response.status_code == status, response.content[:300]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "filename", ["opening\x00hours.md", "opening-hours\ud800.md", "x" * 300 + ".md", "../../etc/opening.md"]
)
def test_a_hostile_upload_file_name_is_a_4xx_or_stored_safely(alpha_api, filename):
    body = (
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="file"; filename="'
        + filename.encode("utf-8", "surrogatepass")
        + b'"\r\nContent-Type: text/markdown\r\n\r\n# Opening hours\n\nWe open at nine.\n\r\n'
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="title"\r\n\r\nHours\r\n--BOUNDARY--\r\n'
    )
    response = alpha_api.post("/api/v1/documents/", body, content_type="multipart/form-data; boundary=BOUNDARY")

    assert response.status_code in (201, 400), response.content[:300]
    if response.status_code == 201:
        name = response.json()["original_name"]
        assert "\x00" not in name and "/" not in name and len(name) <= 255


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["%C2%B2", "1%C2%B2", "%D9%A4"])
def test_a_non_ascii_digit_page_size_is_a_400(alpha_api, limit):
    response = alpha_api.get(f"/api/v1/tools/?limit={limit}")

    assert response.status_code == 400, response.content[:300]


@pytest.mark.django_db
def test_a_non_ascii_digit_content_length_is_a_400(alpha_api):
    response = alpha_api.post("/api/v1/tools/", b"{}", content_type="application/json", CONTENT_LENGTH="²")

    assert response.status_code == 400
