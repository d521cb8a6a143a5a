output "settings_secret_arn" {
  description = "Secrets Manager secret with openpacs' [auth.oidc] settings (JSON), which the servers read at boot."
  value       = aws_secretsmanager_secret.oidc_settings.arn
}

output "issuer" {
  description = "The user pool's OpenID Connect issuer ([auth.oidc] issuer)."
  value       = local.oidc_settings.issuer
}

output "client_id" {
  description = "The portal's app client id ([auth.oidc] client_id); a public client without a secret."
  value       = aws_cognito_user_pool_client.portal.id
}

output "user_pool_id" {
  description = "The user pool, where administrators create users and add them to the role groups."
  value       = aws_cognito_user_pool.this.id
}

output "hosted_ui" {
  description = "The hosted UI's address (sign-in, sign-out)."
  value       = "https://${aws_cognito_user_pool_domain.this.domain}.auth.${local.region}.amazoncognito.com"
}

output "groups" {
  description = "The user pool's groups, one per openpacs role (group name => role)."
  value       = { for role, group in aws_cognito_user_group.role : group.name => role }
}
