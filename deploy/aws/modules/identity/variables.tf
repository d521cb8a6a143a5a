variable "name" {
  description = "Prefix for every resource name (lower case letters, digits, hyphens)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name: 2-24 characters, lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key that encrypts the [auth.oidc] settings secret."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn: the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "portal_url" {
  description = "The portal's address as users' browsers reach it (https://pacs.hospital.example): the app client's callback is <portal_url>/api/oidc/callback, its sign-out URL <portal_url>/."
  type        = string
  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$", var.portal_url))
    error_message = "portal_url: https://HOST[:PORT], without a path."
  }
}

variable "domain_prefix" {
  description = "Prefix of the hosted UI's domain (<prefix>.auth.<region>.amazoncognito.com), unique in the region; empty: <name>-<account id>."
  type        = string
  default     = ""
  validation {
    condition     = var.domain_prefix == "" || (can(regex("^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", var.domain_prefix)) && !can(regex("aws|amazon|cognito", var.domain_prefix)))
    error_message = "domain_prefix: empty, or lower case letters, digits and hyphens (at most 63), without aws, amazon or cognito."
  }
}

variable "mfa" {
  description = "Multi-factor authentication with an authenticator app: \"required\" (every user) or \"optional\" (each user chooses)."
  type        = string
  default     = "required"
  validation {
    condition     = contains(["required", "optional"], var.mfa)
    error_message = "mfa: \"required\" or \"optional\"."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the user pool (and its users) until this is turned off."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
