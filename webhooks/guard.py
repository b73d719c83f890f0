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


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses, including behind IPv4-mapped and 6to4 IPv6 forms."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None and not is_public(embedded):
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
