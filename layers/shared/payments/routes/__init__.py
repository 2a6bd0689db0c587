"""Each route's contract: its envelopes, examples and catalogued errors (`payments.contract.RouteContract`)."""
