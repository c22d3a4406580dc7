"""Knowledge documents over the API: upload, paste, status, filters, re-index, delete, bad files."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from knowledge.models import Document, Passage
from tests.api.conftest import api_client, error_code
from voice.models import Assistant

FAQ = "# Bistro FAQ\n\n## Hours\n\nWe are open from 11.30 to 22.00 every day except Monday.\n"


@pytest.mark.django_db
def test_pasted_text_is_indexed_at_once_and_can_be_reindexed_and_deleted(alpha, alpha_api, make_key):
    with tenant_context(alpha.organization):
        assistant_id = Assistant.objects.get(is_default=True).pk

    created = alpha_api.post(
        "/api/v1/documents/", {"text": FAQ, "language": "en", "assistant_ids": [assistant_id]}, format="json"
    )

    assert created.status_code == 201, created.json()
    document = created.json()
    assert (document["kind"], document["status"], document["title"]) == ("pasted", "ready", "Bistro FAQ")
    assert document["passage_count"] >= 1 and document["assistant_ids"] == [assistant_id]
    assert [row["id"] for row in alpha_api.get("/api/v1/documents/?status=ready").json()["results"]] == [document["id"]]
    assert alpha_api.get("/api/v1/documents/?status=failed").json()["results"] == []
    assert alpha_api.get("/api/v1/documents/?status=lost").status_code == 400

    renamed = alpha_api.patch(
        f"/api/v1/documents/{document['id']}/", {"title": "FAQ", "assistant_ids": []}, format="json"
    )
    assert renamed.status_code == 200 and (renamed.json()["title"], renamed.json()["assistant_ids"]) == ("FAQ", [])
    reindexed = alpha_api.post(f"/api/v1/documents/{document['id']}/reindex/")
    assert reindexed.status_code == 200 and reindexed.json()["status"] == "ready"

    reader = api_client(make_key(alpha, ["read"]))
    assert reader.get(f"/api/v1/documents/{document['id']}/").status_code == 200
    assert error_code(reader.post("/api/v1/documents/", {"text": FAQ}, format="json")) == "insufficient_scope"
    assert error_code(reader.delete(f"/api/v1/documents/{document['id']}/")) == "insufficient_scope"

    assert alpha_api.delete(f"/api/v1/documents/{document['id']}/").status_code == 204
    with tenant_context(alpha.organization):
        assert not Document.objects.exists() and not Passage.objects.exists()


@pytest.mark.django_db
def test_a_file_upload_is_stored_and_queued(alpha, alpha_api):
    upload = SimpleUploadedFile("opening-hours.md", FAQ.encode(), content_type="text/markdown")

    created = alpha_api.post("/api/v1/documents/", {"file": upload, "language": "en"}, format="multipart")

    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["kind"], body["original_name"], body["title"]) == ("markdown", "opening-hours.md", "Opening hours")
    assert body["status"] in ("processing", "ready")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "field"),
    [
        ("manual.pdf", b"this is not a pdf at all", "invalid_document"),
        ("empty.txt", b"", "file"),
        ("tool.exe", b"MZ\x90\x00", "invalid_document"),
    ],
)
def test_bad_files_are_refused_with_a_clear_code(alpha, alpha_api, name, content, field):
    upload = SimpleUploadedFile(name, content)

    response = alpha_api.post("/api/v1/documents/", {"file": upload}, format="multipart")

    assert response.status_code == 400, response.json()
    code = error_code(response)
    if field == "invalid_document":
        assert code == "invalid_document", response.json()
    else:  # Django refuses an empty upload before our checks
        assert code == "validation_error" and field in response.json()["error"]["details"]
    with tenant_context(alpha.organization):
        assert not Document.objects.exists()


@pytest.mark.django_db
def test_bad_document_requests(alpha, alpha_api):
    upload = SimpleUploadedFile("a.md", b"# A\n\nText.")
    both = alpha_api.post("/api/v1/documents/", {"file": upload, "text": "also text"}, format="multipart")
    assert both.status_code == 400 and error_code(both) == "validation_error"
    neither = alpha_api.post("/api/v1/documents/", {"title": "Nothing"}, format="json")
    assert neither.status_code == 400
    unknown = alpha_api.post("/api/v1/documents/", {"text": FAQ, "assistant_ids": [987654321]}, format="json")
    assert unknown.status_code == 400 and "assistant_ids" in unknown.json()["error"]["details"]
    not_json = alpha_api.generic("POST", "/api/v1/documents/", "{not json", content_type="application/json")
    assert not_json.status_code == 400 and error_code(not_json) == "parse_error"
    wrong_type = alpha_api.generic("POST", "/api/v1/documents/", "text", content_type="text/plain")
    assert wrong_type.status_code == 415 and error_code(wrong_type) == "unsupported_media_type"
