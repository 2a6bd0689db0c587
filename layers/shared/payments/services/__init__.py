"""Domain services: the business rules, free of Lambda events and of DynamoDB calls."""
