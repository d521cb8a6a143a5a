"""The AWS deployment's single sign-on (modules/identity), read from the parsed Terraform: a
Cognito user pool that only administrators add users to, with MFA, threat protection, a
strong password policy and deletion protection; a public app client (no secret, so none in
the state) for the authorization code flow with PKCE, calling back to the portal; one group
per openpacs role; and openpacs' [auth.oidc] settings handed to the servers through Secrets
Manager, in the shape openpacs' own settings accept.
"""

from __future__ import annotations

import re

from openpacs.archive.records import ROLES
from openpacs.config import OidcSettings
from tests.deploy.terraform_model import (
    EXAMPLE,
    MODULES,
    first,
    locals_of,
    module_calls,
    one,
    resources,
    variables,
)

IDENTITY = MODULES / "identity"


def test_the_user_pool_is_closed_protected_and_demands_strong_sign_ins() -> None:
    pool = one(IDENTITY, "aws_cognito_user_pool")
    assert first(pool, "admin_create_user_config")["allow_admin_create_user_only"] is True
    assert pool["deletion_protection"] == '${var.deletion_protection ? "ACTIVE" : "INACTIVE"}'
    assert variables(IDENTITY)["deletion_protection"]["default"] is True
    assert first(pool, "user_pool_add_ons")["advanced_security_mode"] == "ENFORCED"
    assert pool["user_pool_tier"] == "PLUS"  # threat protection needs it
    policy = first(pool, "password_policy")
    assert policy["minimum_length"] >= 14
    for kind in ("lowercase", "uppercase", "numbers", "symbols"):
        assert policy[f"require_{kind}"] is True, kind
    assert policy["temporary_password_validity_days"] <= 7
    assert policy["password_history_size"] >= 12
    assert first(pool, "username_configuration")["case_sensitive"] is False


def test_mfa_is_required_unless_made_optional() -> None:
    pool = one(IDENTITY, "aws_cognito_user_pool")
    assert pool["mfa_configuration"] == '${var.mfa == "required" ? "ON" : "OPTIONAL"}'
    assert first(pool, "software_token_mfa_configuration")["enabled"] is True
    mfa = variables(IDENTITY)["mfa"]
    assert mfa["default"] == "required"
    assert '["required", "optional"]' in first(mfa, "validation")["condition"]
    example = variables(EXAMPLE)["identity_mfa"]
    assert example["default"] == "required"
    assert module_calls(EXAMPLE)["identity"]["mfa"] == "${var.identity_mfa}"


def test_the_hosted_ui_has_a_domain_of_the_pool() -> None:
    domain = one(IDENTITY, "aws_cognito_user_pool_domain")
    assert domain["user_pool_id"] == "${aws_cognito_user_pool.this.id}"
    assert domain["domain"] == "${local.domain}"
    condition = first(variables(IDENTITY)["domain_prefix"], "validation")["condition"]
    assert "aws|amazon|cognito" in condition  # Cognito refuses these words in a prefix


def test_the_app_client_is_public_with_the_code_flow_and_the_portals_callback() -> None:
    client = one(IDENTITY, "aws_cognito_user_pool_client")
    assert client["generate_secret"] is False
    assert client["allowed_oauth_flows_user_pool_client"] is True
    assert client["allowed_oauth_flows"] == ["code"]  # never implicit
    assert "openid" in client["allowed_oauth_scopes"]
    assert client["supported_identity_providers"] == ["COGNITO"]
    assert client["callback_urls"] == ["${local.portal}/api/oidc/callback"]
    assert client["logout_urls"] == ["${local.portal}/"]
    assert client["explicit_auth_flows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]  # no password API
    assert client["prevent_user_existence_errors"] == "ENABLED"
    assert client["enable_token_revocation"] is True
    units = first(client, "token_validity_units")
    assert (client["id_token_validity"], units["id_token"]) == (60, "minutes")
    assert (client["access_token_validity"], units["access_token"]) == (60, "minutes")
    condition = first(variables(IDENTITY)["portal_url"], "validation")["condition"]
    assert "^https://" in condition


def test_no_client_secret_exists_anywhere() -> None:
    for path in IDENTITY.glob("*.tf"):
        text = path.read_text(encoding="utf-8")
        assert "client_secret" not in text, path.name
        assert "generate_secret                      = true" not in text


def test_a_group_per_openpacs_role() -> None:
    groups = locals_of(IDENTITY)["groups"]
    assert set(groups) == set(ROLES)
    precedence = [groups[role]["precedence"] for role in ("admin", "user", "uploader")]
    assert precedence == sorted(precedence)  # the strongest role first
    (group,) = resources(IDENTITY, "aws_cognito_user_group")
    assert group.body["for_each"] == "${local.groups}"
    assert group.body["name"] == "${each.key}"
    assert group.body["user_pool_id"] == "${aws_cognito_user_pool.this.id}"


def test_the_auth_oidc_settings_are_what_openpacs_accepts() -> None:
    settings = locals_of(IDENTITY)["oidc_settings"]
    assert set(settings) <= set(OidcSettings.model_fields)
    assert "client_secret_file" not in settings  # a public client
    assert settings["issuer"] == (
        "https://cognito-idp.${local.region}.amazonaws.com/${aws_cognito_user_pool.this.id}"
    )
    assert settings["client_id"] == "${aws_cognito_user_pool_client.portal.id}"
    assert settings["role_claim"] == "cognito:groups"
    assert settings["username_claim"] == "cognito:username"
    assert settings["redirect_uri"] == "${local.portal}/api/oidc/callback"
    assert "openid" in settings["scopes"].split()
    # every role, mapped from the group of its name, the strongest first
    roles = re.fullmatch(r'\$\{\[for role in \[(.*)\] : "(.*)"\]\}', settings["roles"])
    assert roles, settings["roles"]
    assert [r.strip().strip('"') for r in roles[1].split(",")] == ["admin", "user", "uploader"]
    assert roles[2] == "${aws_cognito_user_group.role[role].name}=${role}"
    OidcSettings(  # the mapping as the servers get it validates
        issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI",
        client_id="4example0client0id0abcdefg",
        role_claim="cognito:groups",
        roles=[f"{role}={role}" for role in ("admin", "user", "uploader")],
    )


def test_the_settings_reach_the_servers_through_secrets_manager() -> None:
    secret = one(IDENTITY, "aws_secretsmanager_secret")
    assert secret["kms_key_id"] == "${var.kms_key_arn}"
    version = one(IDENTITY, "aws_secretsmanager_secret_version")
    assert version["secret_string"] == "${jsonencode(local.oidc_settings)}"
    compute = module_calls(EXAMPLE)["compute"]
    assert compute["oidc_settings_secret_arn"] == (
        '${try(module.identity[0].settings_secret_arn, "")}'
    )
    user_data = locals_of(MODULES / "compute")["user_data_vars"]
    assert user_data["oidc_secret_arn"] == "${var.oidc_settings_secret_arn}"


def test_the_example_wires_identity_behind_a_variable() -> None:
    call = module_calls(EXAMPLE)["identity"]
    assert call["count"] == "${var.identity ? 1 : 0}"
    assert call["portal_url"] == "${local.portal_url}"
    assert call["kms_key_arn"] == "${aws_kms_key.openpacs.arn}"
    assert call["deletion_protection"] == "${var.deletion_protection}"
    example = variables(EXAMPLE)
    assert example["identity"]["default"] is False
    # Cognito's hosted UI and token endpoint have no VPC endpoint: NAT is required, and
    # the servers' HTTPS egress opens to the internet only with identity on.
    assert "var.nat_gateways >= 1" in first(example["identity"], "validation")["condition"]
    local = locals_of(EXAMPLE)
    assert local["https_egress_cidrs"] == (
        '${var.identity ? distinct(concat(var.https_egress_cidrs, ["0.0.0.0/0"]))'
        " : var.https_egress_cidrs}"
    )
    assert module_calls(EXAMPLE)["compute"]["https_egress_cidrs"] == "${local.https_egress_cidrs}"
    assert local["portal_url"].startswith("https://")
