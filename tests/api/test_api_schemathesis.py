"""Schemathesis against our own ``/api/v4/openapi.json``, as a system admin, for a bounded time.

Every operation gets generated requests (valid ones and, for bodies, wrong ones); every answer
must be no 5xx, a status the document lists, the content type it lists, and a body that matches
its schema. The requests change things (users, teams, config), so the module runs its own server
on a fresh database with its own admin, never the session's shared one. Logging out is left out:
it would end the admin's session and leave only 401s to test.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support import PASSWORD, Api, ServerThread, fresh_database, start_server

pytestmark = pytest.mark.db

EXAMPLES = 15


def no_server_error(ctx: Any, response: Any, case: Any) -> bool:
    """No 5xx, except Mattermost's deliberate 501 for a feature that is off or not built."""
    if response.status_code >= 500 and response.status_code != 501:
        raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")
    return True


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def own_server() -> Iterator[ServerThread]:
    with fresh_database() as url:
        thread = start_server(url)
        try:
            yield thread
        finally:
            thread.stop()


@pytest.fixture(scope="module")
def own_admin(own_server: ServerThread) -> Api:
    anonymous = Api(own_server.url)
    anonymous.post(
        "/users",
        {"username": "fuzzadmin", "email": "fuzz@example.test", "password": PASSWORD},
        expect=201,
    )
    return anonymous.login("fuzzadmin")


MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_the_api_keeps_its_own_schema(
    own_server: ServerThread, own_admin: Api, mode: GenerationMode
) -> None:
    """Valid and invalid requests for every operation; each operation's first failure is kept
    (no shrinking, so the time stays bounded) and all of them are reported together."""
    schema = schemathesis.openapi.from_url(f"{own_server.url}/api/v4/openapi.json")
    headers = {"Authorization": f"Bearer {own_admin.token}"}
    failures: list[str] = []
    operations = 0
    for result in schema.exclude(path="/api/v4/users/logout").get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(
                base_url=own_server.url, headers=headers, checks=CHECKS, timeout=10
            )

        try:
            run()
        except Unsatisfiable:
            continue  # nothing to make invalid here (no body, no constrained parameter)
        except (Exception, BaseExceptionGroup) as exc:  # collected, then all reported
            failures.append(f"{operation.label}: {exc}"[:2000])
    assert operations > 30
    assert not failures, "\n\n".join(failures)
