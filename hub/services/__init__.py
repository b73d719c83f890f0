"""Domain services: each change validates, scopes by tenant, and writes state (and its events) atomically."""
