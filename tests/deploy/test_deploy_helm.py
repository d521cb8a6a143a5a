"""The Helm chart (deploy/helm/openpacs), rendered with its own values (tests/deploy/
helm_render.py: `helm template`'s semantics for the constructs the chart uses) and checked:
every manifest against the Kubernetes API schema (kubernetes-validate, strict), the security
context, probes, secrets as files, and the openpacs.toml it writes loaded by openpacs itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from openpacs.config import load_settings
from tests.deploy.helm_render import Chart

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "openpacs"
KUBERNETES = "1.30"


def by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        assert manifest["kind"] not in found, manifest["kind"]
        found[manifest["kind"]] = manifest
    return found


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    return by_kind(Chart(CHART).manifests())


def test_every_manifest_matches_the_kubernetes_schema() -> None:
    everything = {
        "ingress": {"enabled": True, "tlsSecretName": "pacs-tls"},
        "networkPolicy": {"dicomClientCidrs": ["198.51.100.0/24"],
                          "httpsClientCidrs": ["198.51.100.0/24"]},
        "image": {"digest": "sha256:" + "a" * 64},
    }  # fmt: skip
    for values in ({}, everything):
        manifests = Chart(CHART, values).manifests()
        kinds = {m["kind"] for m in manifests}
        assert {"Deployment", "Service", "ConfigMap", "NetworkPolicy", "ServiceAccount"} <= kinds
        for manifest in manifests:
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        assert ("Ingress" in kinds) == bool(values)


def test_a_manifest_that_breaks_the_schema_is_caught() -> None:
    broken = Chart(CHART, {"replicas": "two"}).manifests()
    deployment = by_kind(broken)["Deployment"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_pods_run_unprivileged_and_read_only(manifests: dict[str, dict[str, Any]]) -> None:
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]


def test_probes_call_health_over_https(manifests: dict[str, dict[str, Any]]) -> None:
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert (check["path"], check["scheme"], check["port"]) == ("/health", "HTTPS", "https")


def test_secrets_are_files_never_environment_values(
    manifests: dict[str, dict[str, Any]],
) -> None:
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for variable in container["env"]:
        assert "valueFrom" not in variable
        assert not variable["name"].upper().endswith(("PASSWORD", "SECRET", "KEY"))
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "openpacs"
    assert volumes["secrets"]["secret"]["defaultMode"] == 0o400
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    assert mounts["secrets"]["readOnly"] is True


def test_services_expose_dicom_tls_and_https(manifests: dict[str, dict[str, Any]]) -> None:
    ports = {p["name"]: p["port"] for p in manifests["Service"]["spec"]["ports"]}
    assert ports == {"dicom-tls": 2762, "https": 8042}
    policy = manifests["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    with_clients = by_kind(Chart(CHART, {"networkPolicy": {
        "dicomClientCidrs": ["198.51.100.0/24"]}}).manifests())  # fmt: skip
    rules = with_clients["NetworkPolicy"]["spec"]["ingress"]
    dicom = [r for r in rules if r["ports"] == [{"port": 2762, "protocol": "TCP"}]]
    assert [r["from"] for r in dicom] == [[{"ipBlock": {"cidr": "198.51.100.0/24"}}]]


def test_openpacs_loads_the_configuration_the_chart_writes(
    manifests: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("tls.crt", "tls.key", "client-ca.pem", "database-password", "admin-password",
                 "database-ca.pem"):  # fmt: skip
        (secrets / name).write_text("x\n", encoding="utf-8")
    text = manifests["ConfigMap"]["data"]["openpacs.toml"]
    config = tmp_path / "openpacs.toml"
    config.write_text(text.replace("/run/secrets/openpacs", str(secrets)), encoding="utf-8")
    settings = load_settings(config, environ={})
    assert settings.dicom.tls_port == 2762
    assert settings.dicom.tls_require_client_cert is True
    assert settings.dicom.accept_unknown_aets is False
    assert [r.aet for r in settings.dicom.remotes] == ["CT1"]
    assert settings.database.password_file.endswith("/database-password")
    assert settings.http.trusted_proxies == ()
    assert settings.storage.s3_bucket == "openpacs-images"
