"""DynamoDB access: key layout, the item shapes (*_items), and the two request paths' repositories."""
