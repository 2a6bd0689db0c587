"""Shared domain layer of the payments backend: models, DynamoDB access, auth, OTP, errors."""
