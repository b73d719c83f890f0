"""Lotpulse hub: app, configuration, database, domain, detection, events, auth and CLI."""
