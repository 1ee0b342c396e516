"""The client-address key both clients derive for middleware (clients/conformance/ip_keys.json):
`ip:<IPv4>`; IPv4-mapped IPv6 read as IPv4; other IPv6 grouped by its /64 (one host usually
owns a whole /64, so per-address keys would let it rotate through 2^64 identities), written
as RFC 5952 text plus "/64" (`ip:2001:db8::/64`); a zone id dropped; anything else kept as
given."""

import ipaddress


def ip_key(host):
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return f"ip:{host}"
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return f"ip:{ip.ipv4_mapped}"
    if ip.version == 6:
        return f"ip:{ipaddress.ip_network(f'{ip}/64', strict=False).network_address}/64"
    return f"ip:{ip}"


def client_ip_key(scope):
    """The ASGI scope's client address as a key, or None when the server did not give one."""
    client = scope.get("client")
    return ip_key(client[0]) if client else None
