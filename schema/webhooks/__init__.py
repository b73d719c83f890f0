"""GraphQL for webhook endpoints and their delivery log (tenant admins)."""
