"""The GraphQL API (strawberry): root types composed per domain, limits, permissions and the HTTP/WS view."""
