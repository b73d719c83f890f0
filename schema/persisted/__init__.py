"""Persisted queries: each OAuth client's safelist, managed by tenant admins."""
