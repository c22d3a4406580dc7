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
