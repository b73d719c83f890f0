"""Alerts over GraphQL: the alerts query, acknowledge/resolve, and the live alerts subscription."""
