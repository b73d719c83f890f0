"""The hub as an OAuth 2.0 authorization server (RFC 6749, 7009, 7636, 7662, 8414, 9068, 9700)."""
