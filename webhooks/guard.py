"""SSRF guard: outgoing webhooks reach only public addresses, checked at creation and again at send time.

DNS can change between the two checks (rebinding), so at send time the hostname is resolved once, every address is
checked, and the request is sent to the checked address itself (Host header and TLS SNI keep the name), never
re-resolved by the HTTP client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from hub.errors import BadInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


class UnsafeURL(BadInput):
    """The URL is not allowed as a webhook target."""


@dataclass(frozen=True)
class Target:
    """Where to send: ``url`` may carry an IP address in place of the name; ``host`` is the name to present."""

    url: str
    host: str
    pinned: bool  # url points at a checked IP address

    @property
    def extensions(self) -> dict[str, str]:
        return {"sni_hostname": self.host} if self.pinned else {}

    @property
    def headers(self) -> dict[str, str]:
        return {"host": self._host_header} if self.pinned else {}

    @property
    def _host_header(self) -> str:
        parts = urlsplit(self.url)
        default = {"http": 80, "https": 443}[parts.scheme]
        port = parts.port
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if port in (None, default) else f"{name}:{port}"


IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT (RFC 2765): ::ffff:0:a.b.c.d
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: the last 32 bits are the IPv4 target
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215): operator-defined layouts


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address may lead to: mapped, compatible, translated, 6to4, NAT64 and Teredo forms.

    Packets to these reach the embedded IPv4 host through a translator or tunnel, so that host decides.
    """
    found: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in IPV4_COMPATIBLE and int(address) > 1:  # :: and ::1 are judged as IPv6
        found.append(low32)
    if address in IPV4_TRANSLATED:
        found.append(low32)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address in NAT64:
        found.append(low32)
    if address.teredo is not None:
        found.extend(address.teredo)  # (server, client)
    return found


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses, judging every IPv6 form that embeds an IPv4 address by it.

    The local-use NAT64 prefix is never public: where its IPv4 address sits depends on the operator's prefix length.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address in NAT64_LOCAL:
            return False
        if any(not is_public(embedded) for embedded in embedded_ipv4(address)):
            return False
    return address.is_global and not address.is_multicast


def parse(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an acceptable URL shape, or UnsafeURL."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL("webhook URL is too long", field="url")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UnsafeURL("webhook URL is malformed", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("webhook URL must be http or https", field="url")
    if not parts.hostname:
        raise UnsafeURL("webhook URL has no host", field="url")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("webhook URLs may not carry credentials: receivers verify the signature", field="url")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"cannot resolve webhook host {host!r}", field="url") from exc
    # Drop an IPv6 scope id ("fe80::1%eth0") before parsing; the address alone decides.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def check(url: str, allow_private: bool) -> Target:
    """Validate ``url`` and answer where to connect. Refuses any name with one non-public address."""
    scheme, host, port = parse(url)
    if allow_private:
        return Target(url=url, host=host, pinned=False)
    addresses = await resolve(host, port)
    if not addresses:
        raise UnsafeURL(f"cannot resolve webhook host {host!r}", field="url")
    for address in addresses:
        if not is_public(address):
            raise UnsafeURL("webhook URL points at a private, loopback, link-local or reserved address", field="url")
    chosen = addresses[0]
    parts = urlsplit(url)
    literal = f"[{chosen}]" if isinstance(chosen, ipaddress.IPv6Address) else str(chosen)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    return Target(url=parts._replace(netloc=netloc).geturl(), host=host, pinned=True)
