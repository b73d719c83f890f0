"""SSRF guard: every IPv6 form that embeds an IPv4 address is judged by that IPv4 address (pure, no network)."""

from __future__ import annotations

import ipaddress

import pytest

from webhooks import guard

# Each embeds 127.0.0.1, 10.0.0.1 or 169.254.169.254 (the cloud metadata address).
EMBEDDING_PRIVATE = [
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:a00:1",  # IPv4-mapped, hex spelling of 10.0.0.1
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
    "::ffff:0:7f00:1",  # IPv4-translated (SIIT, RFC 2765) 127.0.0.1
    "::ffff:0:169.254.169.254",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 well-known prefix
    "64:ff9b::10.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::7f00:1",  # NAT64 local-use prefix (RFC 8215)
    "64:ff9b:1:ff00:100::",  # local-use prefix, /48 layout of 255.0.1.0 (reserved)
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo: client 127.0.0.1
    "2001:0:a9fe:a9fe:8000:63bf:3fff:fdd2",  # Teredo: server 169.254.169.254, client 192.0.2.45
]
EMBEDDING_PUBLIC = [
    "::ffff:8.8.8.8",
    "::ffff:0:808:808",  # IPv4-translated 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2606:4700:4700::1111",  # plain global IPv6
]


@pytest.mark.parametrize("literal", EMBEDDING_PRIVATE)
def test_ipv6_embedding_a_non_public_ipv4_is_not_public(literal: str):
    assert not guard.is_public(ipaddress.ip_address(literal))


async def test_webhook_urls_with_such_literals_are_refused():
    for literal in EMBEDDING_PRIVATE:
        with pytest.raises(guard.UnsafeURL):
            await guard.check(f"http://[{literal}]/hook", allow_private=False)


@pytest.mark.parametrize("literal", EMBEDDING_PUBLIC)
def test_ipv6_embedding_a_public_ipv4_stays_public(literal: str):
    assert guard.is_public(ipaddress.ip_address(literal))
