"""schemathesis over the OpenAPI description against a real server: no input makes a 5xx.

Bounded: a few examples per operation. Left out: operations that would lock the test out
(changing or removing users, the login itself, which throttles this peer) or reach out to
arbitrary hosts (C-ECHO, send and move jobs towards generated remotes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

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
def api_schema(web: WebNode) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(web.app.openapi()).exclude(
        path_regex=r"^/api/users/|^/api/session$|/(echo|store|move)$"
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_makes_a_server_error(case: schemathesis.Case, web: WebNode) -> None:
    response = case.call(
        base_url=web.url, auth=web.admin, headers={"X-Requested-With": "XMLHttpRequest"}
    )
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
