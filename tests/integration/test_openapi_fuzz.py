"""schemathesis over the OpenAPI description against a real server: no input makes a 5xx.

Bounded: a few examples per operation. Left out: operations that would lock the test out
(changing or removing users, the login itself, which throttles this peer) or reach out to
arbitrary hosts (C-ECHO, send and move jobs towards generated remotes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.schemas import APIOperation

from tests.support import scu
from tests.support.corpus import synthetic_ct_series
from tests.support.web import WebNode, running_web_node


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebNode]:
    with running_web_node(tmp_path_factory.mktemp("fuzz")) as node:
        scu.store(node.dicom.port, synthetic_ct_series(2, rows=8, columns=8))
        with node.client() as client:
            assert client.get("/api/session").status_code == 200
        yield node


@pytest.fixture(scope="module")
def operations(web: WebNode) -> list[APIOperation]:
    schema = schemathesis.openapi.from_dict(web.app.openapi()).exclude(
        path_regex=r"^/api/users/|^/api/session$|/(echo|store|move)$"
    )
    return [result.ok() for result in schema.get_all_operations()]


def test_no_input_makes_a_server_error(operations: list[APIOperation], web: WebNode) -> None:
    """Each operation in turn with Hypothesis' `given` on its case strategy: schemathesis'
    pytest plugin reaches into pytest's private node attributes (pytest 9.2 removed the one
    it used), this public API does not."""
    assert len(operations) > 20, "the schema lists the API's operations"
    failures: list[str] = []
    for operation in operations:
        cases = st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode))

        @given(case=cases)
        @settings(
            max_examples=5,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
            phases=(Phase.explicit, Phase.generate),  # a failing case as found: no shrinking
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(
                base_url=web.url, auth=web.admin, headers={"X-Requested-With": "XMLHttpRequest"}
            )
            assert response.status_code < 500, (case.formatted_path, response.text[:300])

        try:
            check()
        except AssertionError as error:
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert not failures, "\n".join(failures)
