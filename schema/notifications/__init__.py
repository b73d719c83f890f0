"""Notifications over GraphQL: what escalation steps addressed to the caller (by role or as a member), listed, live
and acknowledged."""
