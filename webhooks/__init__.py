"""Outgoing webhooks to partner ERPs (Standard Webhooks)."""
