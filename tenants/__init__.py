"""Tenants, members, partnerships and who may see what."""
