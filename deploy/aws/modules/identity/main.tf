# Single sign-on: an Amazon Cognito user pool for the portal's users, its hosted-UI domain, an
# app client for openpacs and one group per openpacs role. The app client has no secret: it
# is a public OpenID Connect client (authorization code with PKCE), so no client secret exists
# anywhere, in Terraform state least of all. What openpacs' [auth.oidc] needs (issuer, client
# id, the groups claim and its mapping to roles) is written to a Secrets Manager secret the
# servers read at boot, like their other settings; it holds nothing secret.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region = data.aws_region.current.name
  domain = var.domain_prefix != "" ? var.domain_prefix : "${var.name}-${data.aws_caller_identity.current.account_id}"
  portal = trimsuffix(var.portal_url, "/")

  # One group per openpacs role; the lower the precedence, the stronger the role, and
  # openpacs maps the first entry of `roles` that the user's groups hold.
  groups = {
    admin    = { precedence = 1, description = "openpacs administrators: users, settings, everything" }
    user     = { precedence = 2, description = "openpacs users: read, search, view, send studies" }
    uploader = { precedence = 3, description = "openpacs uploaders: store studies only" }
  }

  # openpacs' [auth.oidc] (docs/configuration.md), as OPENPACS_AUTH__OIDC__* values.
  oidc_settings = {
    issuer         = "https://cognito-idp.${local.region}.amazonaws.com/${aws_cognito_user_pool.this.id}"
    client_id      = aws_cognito_user_pool_client.portal.id
    redirect_uri   = "${local.portal}/api/oidc/callback"
    scopes         = "openid profile email"
    username_claim = "cognito:username"
    role_claim     = "cognito:groups"
    roles          = [for role in ["admin", "user", "uploader"] : "${aws_cognito_user_group.role[role].name}=${role}"]
  }
}

resource "aws_cognito_user_pool" "this" {
  name                     = "${var.name}-users"
  deletion_protection      = var.deletion_protection ? "ACTIVE" : "INACTIVE"
  user_pool_tier           = "PLUS" # threat protection (advanced security) needs it
  mfa_configuration        = var.mfa == "required" ? "ON" : "OPTIONAL"
  auto_verified_attributes = ["email"]

  software_token_mfa_configuration {
    enabled = true
  }

  # The hospital's administrators create accounts; nobody signs up on their own.
  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  password_policy {
    minimum_length                   = 14
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 3
    password_history_size            = 24
  }

  # Compromised credentials and risky sign-ins are blocked, not only reported.
  user_pool_add_ons {
    advanced_security_mode = "ENFORCED"
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  username_configuration {
    case_sensitive = false
  }

  tags = var.tags
}

resource "aws_cognito_user_pool_domain" "this" {
  domain       = local.domain
  user_pool_id = aws_cognito_user_pool.this.id
}

resource "aws_cognito_user_pool_client" "portal" {
  name                                 = "${var.name}-portal"
  user_pool_id                         = aws_cognito_user_pool.this.id
  generate_secret                      = false # a public client: PKCE, no secret in state
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["code"]
  allowed_oauth_scopes                 = ["openid", "profile", "email"]
  supported_identity_providers         = ["COGNITO"]
  callback_urls                        = ["${local.portal}/api/oidc/callback"]
  logout_urls                          = ["${local.portal}/"]
  explicit_auth_flows                  = ["ALLOW_REFRESH_TOKEN_AUTH"] # sign-in only through the hosted UI
  prevent_user_existence_errors        = "ENABLED"
  enable_token_revocation              = true
  auth_session_validity                = 3
  id_token_validity                    = 60
  access_token_validity                = 60
  refresh_token_validity               = 12

  token_validity_units {
    id_token      = "minutes"
    access_token  = "minutes"
    refresh_token = "hours"
  }
}

resource "aws_cognito_user_group" "role" {
  for_each     = local.groups
  name         = each.key
  user_pool_id = aws_cognito_user_pool.this.id
  precedence   = each.value.precedence
  description  = each.value.description
}

# --- [auth.oidc] for the servers ------------------------------------------------------------

resource "aws_secretsmanager_secret" "oidc_settings" {
  #checkov:skip=CKV2_AWS_57:Settings, not a credential: the issuer, a public client's id and the role mapping; nothing to rotate.
  name_prefix             = "${var.name}-oidc-settings-"
  description             = "openpacs: [auth.oidc] settings of the Cognito user pool (no secret: a public client)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "oidc_settings" {
  secret_id     = aws_secretsmanager_secret.oidc_settings.id
  secret_string = jsonencode(local.oidc_settings)
}
