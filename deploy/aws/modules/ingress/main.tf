# Two front doors, each admitting only the listed client ranges: an Application Load Balancer
# for HTTPS (web interface, REST, DICOMweb) and a Network Load Balancer for DICOM over TLS.
# The ALB terminates TLS with the ACM certificate and opens a new TLS connection to openpacs
# (which believes its X-Forwarded-For). The NLB passes DICOM's TLS through untouched (TCP), so
# openpacs itself presents the site's certificate and requires the modalities' client
# certificates. The health checks call openpacs' /health over HTTPS.

locals {
  tls_policy = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

# --- web: Application Load Balancer ---------------------------------------------------------

resource "aws_security_group" "web" {
  name_prefix = "${var.name}-web-lb-"
  description = "HTTPS from the listed client ranges to the web load balancer"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-web-lb" })
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "web_clients" {
  for_each          = toset(var.web_client_cidrs)
  security_group_id = aws_security_group.web.id
  description       = "HTTPS from a client range"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.key
}

resource "aws_vpc_security_group_egress_rule" "web_targets" {
  for_each          = toset(var.target_cidrs)
  security_group_id = aws_security_group.web.id
  description       = "HTTPS to openpacs"
  ip_protocol       = "tcp"
  from_port         = var.target_https_port
  to_port           = var.target_https_port
  cidr_ipv4         = each.key
}

resource "aws_lb" "web" {
  #checkov:skip=CKV2_AWS_76:No WAF web ACL is attached by default (see CKV2_AWS_28); one given in var.web_acl_arn should include AWSManagedRulesKnownBadInputsRuleSet.
  #checkov:skip=CKV2_AWS_28:A WAF web ACL is optional (var.web_acl_arn): every route but /health requires authentication, and AWS managed rule sets block DICOMweb uploads (STOW-RS) unless tuned per site.
  name                       = "${var.name}-web"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.web.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 300
  access_logs {
    bucket  = var.log_bucket
    prefix  = "lb"
    enabled = true
  }
  tags = var.tags
}

resource "aws_lb_target_group" "web" {
  name_prefix = "web-"
  port        = var.target_https_port
  protocol    = "HTTPS"
  vpc_id      = var.vpc_id
  target_type = var.target_type
  health_check {
    protocol            = "HTTPS"
    path                = "/health"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
  stickiness {
    type    = "lb_cookie"
    enabled = false
  }
  deregistration_delay = 60
  tags                 = var.tags
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "web" {
  load_balancer_arn = aws_lb.web.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = local.tls_policy
  certificate_arn   = var.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "web" {
  count        = var.web_acl_arn == "" ? 0 : 1
  resource_arn = aws_lb.web.arn
  web_acl_arn  = var.web_acl_arn
}

# --- DICOM: Network Load Balancer -----------------------------------------------------------

resource "aws_security_group" "dicom" {
  name_prefix = "${var.name}-dicom-lb-"
  description = "DICOM over TLS from the listed client ranges to the DICOM load balancer"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-dicom-lb" })
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "dicom_clients" {
  for_each          = toset(var.dicom_client_cidrs)
  security_group_id = aws_security_group.dicom.id
  description       = "DICOM TLS from a client range"
  ip_protocol       = "tcp"
  from_port         = var.dicom_port
  to_port           = var.dicom_port
  cidr_ipv4         = each.key
}

resource "aws_vpc_security_group_egress_rule" "dicom_targets" {
  for_each          = toset(var.target_cidrs)
  security_group_id = aws_security_group.dicom.id
  description       = "DICOM TLS to openpacs"
  ip_protocol       = "tcp"
  from_port         = var.target_dicom_tls_port
  to_port           = var.target_dicom_tls_port
  cidr_ipv4         = each.key
}

resource "aws_vpc_security_group_egress_rule" "dicom_health" {
  for_each          = toset(var.target_cidrs)
  security_group_id = aws_security_group.dicom.id
  description       = "Health checks to openpacs' HTTPS /health"
  ip_protocol       = "tcp"
  from_port         = var.target_https_port
  to_port           = var.target_https_port
  cidr_ipv4         = each.key
}

resource "aws_lb" "dicom" {
  name                             = "${var.name}-dicom"
  load_balancer_type               = "network"
  internal                         = false
  subnets                          = var.public_subnet_ids
  security_groups                  = [aws_security_group.dicom.id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection
  access_logs {
    bucket  = var.log_bucket
    prefix  = "lb"
    enabled = true
  }
  tags = var.tags
}

resource "aws_lb_target_group" "dicom" {
  name_prefix = "dcm-"
  port        = var.target_dicom_tls_port
  protocol    = "TCP"
  vpc_id      = var.vpc_id
  target_type = var.target_type
  # openpacs sees the modality's address (peers' `addresses`, the audit trail) with IP
  # targets too, where the default for TCP is the load balancer's.
  preserve_client_ip = true
  health_check {
    protocol            = "HTTPS"
    port                = tostring(var.target_https_port)
    path                = "/health"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
  # Associations can be long (a CT study); let them finish when a server leaves.
  deregistration_delay = 300
  tags                 = var.tags
  lifecycle {
    create_before_destroy = true
  }
}

# TCP: the TLS session is between the modality and openpacs (mutual TLS), not the NLB.
resource "aws_lb_listener" "dicom" {
  #checkov:skip=CKV_AWS_2:DICOM TLS passes through to openpacs, which terminates it with the site's certificate and requires client certificates; a TLS listener would cut the client certificate off.
  #checkov:skip=CKV_AWS_103:As above: TLS (1.2+, openpacs' BCP 195 context) is negotiated by openpacs, not the load balancer.
  load_balancer_arn = aws_lb.dicom.arn
  port              = var.dicom_port
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.dicom.arn
  }
  tags = var.tags
}

# --- PrivateLink: the DICOM (and HTTPS) front door as a VPC endpoint service ------------------
# A hospital's VPC (reached over Direct Connect or VPN) connects through an interface endpoint
# of its own, with no public address on either side; each connection request waits for
# acceptance, and only the listed principals may ask.

resource "aws_lb" "private" {
  count                            = length(var.privatelink_allowed_principals) > 0 ? 1 : 0
  name                             = "${var.name}-private"
  load_balancer_type               = "network"
  internal                         = true
  subnets                          = var.private_subnet_ids
  security_groups                  = [aws_security_group.dicom.id]
  enable_cross_zone_load_balancing = true
  # PrivateLink traffic is admitted by the endpoint service (allowed principals, acceptance),
  # not by client address ranges, which belong to the consumer's VPC.
  enforce_security_group_inbound_rules_on_private_link_traffic = "off"
  enable_deletion_protection                                   = var.deletion_protection
  access_logs {
    bucket  = var.log_bucket
    prefix  = "lb"
    enabled = true
  }
  tags = var.tags
}

resource "aws_lb_listener" "private_dicom" {
  #checkov:skip=CKV_AWS_2:DICOM TLS passes through to openpacs (mutual TLS), as on the public DICOM load balancer.
  #checkov:skip=CKV_AWS_103:As above: openpacs negotiates TLS 1.2+ itself.
  count             = length(aws_lb.private)
  load_balancer_arn = aws_lb.private[0].arn
  port              = var.dicom_port
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.dicom.arn
  }
  tags = var.tags
}

resource "aws_vpc_endpoint_service" "dicom" {
  count                      = length(aws_lb.private)
  acceptance_required        = true
  network_load_balancer_arns = [aws_lb.private[0].arn]
  allowed_principals         = var.privatelink_allowed_principals
  tags                       = merge(var.tags, { Name = "${var.name}-dicom" })
}
