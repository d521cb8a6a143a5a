output "alarm_topic_arn" {
  description = "SNS topic the alarms publish to: subscribe paging, chat or e-mail to it."
  value       = aws_sns_topic.alarms.arn
}
