"""``HOST:PORT`` addresses as people write them: ``127.0.0.1:7080``, ``[::1]:7080``.

Pure: text in, (host, port) or an ``AddressError`` saying what is wrong out.
Rule files (``settings.http.listen``) and ``--http`` read addresses with it.
"""

from __future__ import annotations

import ipaddress
import re

from engine.errors import CuecapError


class AddressError(CuecapError, ValueError):
    """Text that is not a HOST:PORT address."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:7080`` for IPv6; port 0 picks a free one) as (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not host or (":" in host and not text.startswith("[")):
        raise AddressError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:7080, [::1]:7080)")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise AddressError(f"{text!r}: the port must be a number from 0 to 65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9.-]+", host):
                raise AddressError(f"{text!r}: {host!r} is not a host name or address") from None
    return host, int(port_text)
