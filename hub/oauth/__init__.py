"""The hub as an OAuth 2.0 authorization server (RFC 6749, 7009, 7636, 7662, 8414, 9068, 9207, 9700).

How it is used:

- A tenant admin registers clients over GraphQL: ``createOAuthClient(input: {name, scopes, roles, kind,
  redirectUris})`` answers the client id and, for a confidential client, its secret (shown once, stored hashed);
  ``rotateOAuthClientSecret``, ``deleteOAuthClient`` and ``oauthClients`` manage them. Scopes: ``read``, ``write``,
  ``admin``, ``webhooks:manage``, ``sensors:ingest`` (``scopes.py``).
- A partner ERP (confidential client) posts ``grant_type=client_credentials`` to ``/oauth/token`` with HTTP Basic
  client authentication and gets a 15-minute RFC 9068 JWT (``typ: at+jwt``) for ``Authorization: Bearer``.
- A portal (public client) sends the browser to ``/oauth/authorize`` with ``response_type=code``, an exact registered
  ``redirect_uri``, ``state`` and an S256 ``code_challenge``. The hub signs the user in at the tenant's OpenID Connect
  provider (``configureIdentityProvider``), maps (issuer, subject) to a member of that tenant, and redirects back
  with a code (and ``iss``); the portal exchanges it with its ``code_verifier`` for an access token and a rotating
  refresh token. Reusing a rotated refresh token, or replaying a code, revokes the whole sign-in.
- ``/oauth/revoke`` (RFC 7009) and ``/oauth/introspect`` (RFC 7662, confidential clients of the token's tenant);
  metadata at ``/.well-known/oauth-authorization-server`` and ``/.well-known/openid-configuration``; keys at
  ``/.well-known/jwks.json``, rotated with ``lotpulse keys rotate``.
- Tenant admins read ``auditLog``: every issuance, refusal, revocation, sign-in and admin change, with actor, IP and
  user agent, and never a secret or token.

Modules: ``server.py`` (authlib on Starlette), ``grants.py``, ``endpoints.py`` (revocation, introspection),
``clients.py``, ``tokens.py``, ``upstream.py`` (federated sign-in), ``revocation.py``, ``ratelimit.py``, ``routes.py``.
"""
