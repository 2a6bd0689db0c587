"""The one Logger, Tracer and Metrics of the service, shared by both handlers."""

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "payments"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="WillsonPayments", service=SERVICE)
