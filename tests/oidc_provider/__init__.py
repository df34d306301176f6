"""A small OpenID Connect provider for the tests (`Provider`), and Chromium helpers that sign in
through its pages (`browser`)."""

from .provider import Client, OAuthError, Provider, User, pkce_challenge
from .tokens import unverified_claims

__all__ = ["Client", "OAuthError", "Provider", "User", "pkce_challenge", "unverified_claims"]
