"""The OpenAPI schema (what /api/docs/ and the fuzz test read) is generated and validated without a warning:
a new endpoint whose operations collide or cannot be described fails here, not in a browser."""

from django.core.management import call_command


def test_the_schema_validates_without_warnings(db, tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/v1/events/{event_id}/" in text and "/api/v1/orgs/organizations/{org_id}/projects/{project_id}/" in text
