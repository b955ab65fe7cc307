"""Drift statistics and fairness audits: numpy only, so gateways can run them on their own logs."""
