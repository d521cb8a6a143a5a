# A VPC over two availability zones: public subnets hold only the load balancers; openpacs and
# PostgreSQL live in private subnets. AWS APIs are reached through VPC endpoints (S3 gateway;
# Secrets Manager, KMS, SSM, CloudWatch Logs and ECR interface endpoints), each with a policy
# that admits this account's principals only, so the servers need no internet access: the
# image comes from ECR, OS packages from the Amazon Linux repositories in S3. NAT is optional
# (nat_gateways) for a registry outside AWS. Every flow is logged.

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only the first two zones in name order are used (slice below); a zone AWS adds later sorts after them, so the subnets never move.
  state = "available"
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  zones = slice(data.aws_availability_zones.available.names, 0, 2)
  # /20 VPC and larger: 8 subnets of a 16th each; 0-1 public, 2-3 application, 4-5 database.
  public_cidrs       = [for i in range(2) : cidrsubnet(var.cidr_block, 4, i)]
  application_cidrs  = [for i in range(2) : cidrsubnet(var.cidr_block, 4, 2 + i)]
  database_cidrs     = [for i in range(2) : cidrsubnet(var.cidr_block, 4, 4 + i)]
  interface_services = ["secretsmanager", "kms", "ssm", "ssmmessages", "ec2messages", "logs", "ecr.api", "ecr.dkr", "sqs"]
  region             = data.aws_region.current.name
  account            = data.aws_caller_identity.current.account_id
  partition          = data.aws_partition.current.partition
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(var.tags, { Name = var.name })
}

# The default security group admits nothing: every resource gets a group of its own.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-default-closed" })
}

resource "aws_subnet" "public" {
  count                   = 2
  vpc_id                  = aws_vpc.this.id
  cidr_block              = local.public_cidrs[count.index]
  availability_zone       = local.zones[count.index]
  map_public_ip_on_launch = false
  tags                    = merge(var.tags, { Name = "${var.name}-public-${local.zones[count.index]}", Tier = "public" })
}

resource "aws_subnet" "application" {
  count             = 2
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.application_cidrs[count.index]
  availability_zone = local.zones[count.index]
  tags              = merge(var.tags, { Name = "${var.name}-application-${local.zones[count.index]}", Tier = "private" })
}

resource "aws_subnet" "database" {
  count             = 2
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.database_cidrs[count.index]
  availability_zone = local.zones[count.index]
  tags              = merge(var.tags, { Name = "${var.name}-database-${local.zones[count.index]}", Tier = "private" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = var.name })
}

resource "aws_eip" "nat" {
  count  = var.nat_gateways
  domain = "vpc"
  tags   = merge(var.tags, { Name = "${var.name}-nat-${count.index}" })
}

resource "aws_nat_gateway" "this" {
  count         = var.nat_gateways
  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = merge(var.tags, { Name = "${var.name}-nat-${count.index}" })
  depends_on    = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-public" })
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count          = 2
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

# One route table per zone, so each zone can use its own NAT gateway when there are two.
resource "aws_route_table" "application" {
  count  = 2
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-application-${local.zones[count.index]}" })
}

resource "aws_route" "application_nat" {
  count                  = var.nat_gateways > 0 ? 2 : 0
  route_table_id         = aws_route_table.application[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[min(count.index, var.nat_gateways - 1)].id
}

resource "aws_route_table_association" "application" {
  count          = 2
  subnet_id      = aws_subnet.application[count.index].id
  route_table_id = aws_route_table.application[count.index].id
}

# The database subnets have no route out at all.
resource "aws_route_table" "database" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-database" })
}

resource "aws_route_table_association" "database" {
  count          = 2
  subnet_id      = aws_subnet.database[count.index].id
  route_table_id = aws_route_table.database.id
}

# S3 through the gateway: this account's buckets, plus reading the two AWS buckets the servers
# need (the Amazon Linux 2023 package repositories and ECR's image layers).
data "aws_iam_policy_document" "s3_endpoint" {
  #checkov:skip=CKV_AWS_283:An endpoint policy filters on top of IAM: principal "*" is how it names every caller, and the conditions narrow it to this account's buckets and two AWS buckets, read only.
  statement {
    sid       = "ThisAccountsBuckets"
    actions   = ["s3:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceAccount"
      values   = [local.account]
    }
  }
  statement {
    sid     = "AmazonLinuxPackagesAndEcrLayers"
    actions = ["s3:GetObject"]
    resources = [
      "arn:${local.partition}:s3:::al2023-repos-${local.region}-de612dc2/*",
      "arn:${local.partition}:s3:::prod-${local.region}-starport-layer-bucket/*",
    ]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
  }
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.application[*].id
  policy            = data.aws_iam_policy_document.s3_endpoint.json
  tags              = merge(var.tags, { Name = "${var.name}-s3" })
}

# The interface endpoints serve this account's principals only.
data "aws_iam_policy_document" "interface_endpoints" {
  #checkov:skip=CKV_AWS_49:An endpoint policy grants nothing by itself (IAM still decides); "*" actions with the aws:PrincipalAccount condition only keep other accounts' principals out.
  #checkov:skip=CKV_AWS_1:As above: not an IAM policy that grants administrator rights, an endpoint filter admitting this account's principals only.
  statement {
    sid       = "ThisAccountsPrincipals"
    actions   = ["*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalAccount"
      values   = [local.account]
    }
  }
}

resource "aws_security_group" "endpoints" {
  name_prefix = "${var.name}-endpoints-"
  description = "HTTPS from inside the VPC to the AWS API interface endpoints"
  vpc_id      = aws_vpc.this.id
  tags        = merge(var.tags, { Name = "${var.name}-endpoints" })
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  security_group_id = aws_security_group.endpoints.id
  description       = "HTTPS from the VPC"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.cidr_block
}

resource "aws_vpc_endpoint" "interface" {
  for_each            = toset(local.interface_services)
  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.application[*].id
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
  policy              = data.aws_iam_policy_document.interface_endpoints.json
  tags                = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

# --- flow logs ------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = "/openpacs/${var.name}/vpc-flow-logs"
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name_prefix        = "${var.name}-flowlogs-"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow_logs.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

resource "aws_flow_log" "this" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn             = aws_iam_role.flow_logs.arn
  max_aggregation_interval = 60
  tags                     = var.tags
}
