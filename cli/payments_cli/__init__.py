"""The `payments` command-line tool: local stack, tables, fixtures, tokens, OTP, reconciliation."""
