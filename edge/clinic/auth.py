"""Who may use the gateway's upload APIs: one bearer token per client, from the environment.

The variable (http.token_env, EDGEWARD_GATEWAY_TOKEN by default) holds `client=token` pairs,
comma-separated (a bare token is client "default"), so a camera's token can be revoked alone.
Tokens live only in the environment, never in a config file. Every presented token is compared
with every known one in constant time, so timing tells an attacker nothing about how close a
guess came. gRPC clients send the same value as `authorization: Bearer <token>` metadata.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import Any

import grpc

from shared.errors import ConfigError

MIN_TOKEN_CHARS = 16  # below this a token can be guessed online; 32 hex chars is what we suggest
SCHEME = "bearer "


class ApiTokens:
    """The accepted tokens by client name; `client_for` answers who presented a header."""

    def __init__(self, tokens: dict[str, str]) -> None:
        if not tokens:
            raise ConfigError("gateway API tokens: none given; set at least one client token")
        for client, token in tokens.items():
            if len(token) < MIN_TOKEN_CHARS:
                raise ConfigError(
                    f"gateway API token of client {client!r} is {len(token)} characters, below "
                    f"{MIN_TOKEN_CHARS}; make one with `python -c 'import secrets; "
                    "print(secrets.token_hex(32))'`"
                )
        self._tokens = {client: token.encode() for client, token in tokens.items()}

    @classmethod
    def parse(cls, value: str, variable: str = "the token variable") -> ApiTokens:
        tokens: dict[str, str] = {}
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            client, sep, token = item.partition("=")
            if not sep:
                client, token = "default", item
            client = client.strip()
            if not client or client in tokens:
                raise ConfigError(
                    f"{variable}: client name {client!r} is empty or given twice; "
                    "write client=token pairs separated by commas"
                )
            tokens[client] = token.strip()
        return cls(tokens)

    @classmethod
    def from_env(cls, variable: str) -> ApiTokens:
        value = os.environ.get(variable, "")
        if not value.strip():
            raise ConfigError(
                f"gateway upload API: environment variable {variable} is not set; export one "
                "token per client (e.g. camera-1=<32+ random chars>) before starting the gateway"
            )
        return cls.parse(value, variable)

    def client_for(self, header: str | None) -> str | None:
        """The client whose token `header` ("Bearer <token>") carries, or None."""
        if not header or header[: len(SCHEME)].lower() != SCHEME:
            return None
        presented = header[len(SCHEME) :].strip().encode()
        found = None
        for client, token in self._tokens.items():  # no early exit: every token is compared
            if hmac.compare_digest(presented, token):
                found = client
        return found


UNAUTHENTICATED = (
    "no valid gateway token: send `authorization: Bearer <token>` with a token from "
    "the gateway's token variable (EDGEWARD_GATEWAY_TOKEN by default)"
)


class TokenInterceptor(grpc.ServerInterceptor):
    """Refuses every RPC whose metadata lacks a known bearer token, before the servicer runs."""

    def __init__(self, tokens: ApiTokens) -> None:
        self.tokens = tokens

        def deny(request: Any, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED)

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        metadata = dict(handler_call_details.invocation_metadata or ())
        header = metadata.get("authorization")
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        if self.tokens.client_for(header) is None:
            return self._deny
        return continuation(handler_call_details)
