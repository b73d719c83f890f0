"""Relay's node(id:) and nodes(ids:): any Node by its id, within the caller's tenancy."""
