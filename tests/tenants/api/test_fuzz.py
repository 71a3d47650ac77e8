"""Schemathesis over our own OpenAPI schema: no 5xx, and every answer is what the schema says.

Bounded and deterministic (derandomized, a fixed number of examples per
operation) so it runs in the normal suite. Requests go through Django's WSGI
handler in-process, authenticated with a real key of a tenant that has memories.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from memadmin.memory import services
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_api_key

EXAMPLES_PER_OPERATION = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def in_process_wsgi():
    """Like Django's test Client: requests must not close the test transaction's connection."""
    signals = (request_started, request_finished)
    for signal in signals:
        signal.disconnect(close_old_connections)
    yield get_wsgi_application()
    for signal in signals:
        signal.connect(close_old_connections)


@pytest.fixture
def fuzz_target(world, settings, in_process_wsgi):
    settings.MEMADMIN_API_RATE = None  # the fuzzer sends hundreds of requests with one key
    scope = scope_for_api_key(TenantAPIKey.objects.get(name="acme-server"))
    for i, user_id in enumerate(("u1", "u2", "0", "a")):
        services.memory_add(
            scope=scope, app_id="concierge_app", messages=f"fact {i}", user_id=user_id, agent_id="agent", run_id="run"
        )
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", in_process_wsgi)


def _operations(schema):
    for result in schema.get_all_operations():
        yield result.ok()


def test_fuzz_every_operation(world, fuzz_target):
    headers = {"Authorization": f"Token {world.acme_key}"}
    operations = list(_operations(fuzz_target))
    assert len(operations) >= 16
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        run()
