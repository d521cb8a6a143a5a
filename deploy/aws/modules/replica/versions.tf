terraform {
  # 1.11: write-only arguments (secret_string_wo) keep the admin password out of plans and
  # state. The AWS provider from 5.100 (write-only arguments, ephemeral resources) to 6.x:
  # data.aws_region's `name` is used because 5.x has no `region` attribute (6.x deprecates
  # `name` but keeps it).
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 7.0"
    }
  }
}
