"""The only code that talks to DynamoDB: key layout, item mapping and the two repositories."""
