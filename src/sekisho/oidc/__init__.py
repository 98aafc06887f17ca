"""The OpenID Connect provider (OpenID Connect Core 1.0, OAuth 2.0 RFC 6749 with the
Security BCP RFC 9700): authorization code flow with PKCE only.

One module per noun or endpoint. The provider reads the session's facts (user id,
``auth_time``, ``amr``, AAL) through the same session core the pages use; nothing here
is known to :mod:`sekisho.core` or :mod:`sekisho.methods`. Every JWS and JWK operation
goes through joserfc. See docs/flows/oidc.md.
"""
