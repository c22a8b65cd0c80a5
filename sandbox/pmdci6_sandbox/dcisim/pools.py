"""IP pools with real address allocation (the `ipaddress` module).

An IPv4 pool hands out single addresses from its range (the gateway is never handed out).
An IPv6 pool hands out either single /128 addresses, taken from the pool's first /64 (which
also holds the gateway), or aligned subnets of a requested prefix (e.g. /64) from the rest of
the pool, never overlapping anything already handed out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

IPv4 = "ipv4"
IPv6 = "ipv6"

# IPv6 single addresses come from the pool's first subnet of this size.
SINGLE_ADDRESS_SUBNET = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PoolExhausted(Exception):
    """No free address or subnet of the requested size is left."""


class AllocationRefused(ValueError):
    """The request does not fit the pool (family, prefix)."""


@dataclass
class AddressPool:
    id: int
    name: str
    family: str
    network: Network
    gateway: str | None
    first: int  # first allocatable address (as an integer), inclusive
    last: int  # last allocatable address, inclusive
    for_deallocation: bool = False
    forced_exhausted: bool = False
    note: str = ""
    _used_addresses: set[int] = field(default_factory=set)
    _used_subnets: set[Network] = field(default_factory=set)
    _cursor: int = 0

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> AddressPool:
        network = ipaddress.ip_network(str(document["network"]), strict=True)
        family = IPv4 if network.version == 4 else IPv6
        declared = str(document.get("family", family))
        if declared != family:
            raise ValueError(f"pool {document.get('id')}: family {declared} != {network}")
        gateway = document.get("gateway")
        if gateway is None:
            gateway = str(network.network_address + 1)
        if ipaddress.ip_address(gateway) not in network:
            raise ValueError(f"pool {document.get('id')}: gateway {gateway} outside {network}")
        if "range" in document:
            low, high = (int(ipaddress.ip_address(str(edge))) for edge in document["range"])
        elif family == IPv4:
            low, high = int(network.network_address) + 1, int(network.broadcast_address) - 1
        else:
            single = _single_address_block(network)
            low, high = int(single.network_address) + 1, int(single.broadcast_address)
        if not (
            int(network.network_address) <= low <= high <= int(network.broadcast_address)
        ):
            raise ValueError(f"pool {document.get('id')}: range outside {network}")
        return cls(
            id=int(document["id"]),
            name=str(document["name"]),
            family=family,
            network=network,
            gateway=str(gateway),
            first=low,
            last=high,
            for_deallocation=bool(document.get("for_deallocation", False)),
            note=str(document.get("note", "")),
            _cursor=low,
        )

    def describe(self) -> dict[str, Any]:
        """The pool as `GET /ip/v3/ippool` lists it."""
        return {
            "id": self.id,
            "name": self.name,
            "family": self.family,
            "network": str(self.network),
            "gateway": self.gateway,
            "note": self.note,
        }

    def contains(self, name: str) -> bool:
        try:
            return _parse(name).subnet_of(self.network)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            return False

    # --- allocation ----------------------------------------------------------------------

    def allocate(self, prefix: int | None = None) -> str:
        """Returns the address (`203.0.113.7`, `2001:db8::2`) or subnet (`2001:db8:0:1::/64`)."""
        if self.forced_exhausted:
            raise PoolExhausted(self.name)
        full = self.network.max_prefixlen
        if prefix is None or prefix == full:
            return self._allocate_address()
        if self.family == IPv4:
            raise AllocationRefused(f"pool {self.name} hands out single IPv4 addresses only")
        if not self.network.prefixlen <= prefix < full:
            raise AllocationRefused(
                f"prefix /{prefix} does not fit pool {self.network} (allowed "
                f"/{self.network.prefixlen}../{full})"
            )
        return self._allocate_subnet(prefix)

    def _reserved(self, candidate: int) -> bool:
        return candidate in self._used_addresses or (
            self.gateway is not None and candidate == int(ipaddress.ip_address(self.gateway))
        )

    def _allocate_address(self) -> str:
        span = self.last - self.first + 1
        candidate = self._cursor
        for _ in range(span):
            if not self._reserved(candidate) and not self._in_used_subnet(candidate):
                self._used_addresses.add(candidate)
                self._cursor = self.first if candidate >= self.last else candidate + 1
                return str(ipaddress.ip_address(candidate))
            candidate = self.first if candidate >= self.last else candidate + 1
        raise PoolExhausted(self.name)

    def _in_used_subnet(self, address: int) -> bool:
        if not self._used_subnets:
            return False
        ip = ipaddress.ip_address(address)
        return any(ip in subnet for subnet in self._used_subnets)

    def _candidate_subnets(self, prefix: int) -> Iterator[Network]:
        yield from self.network.subnets(new_prefix=prefix)

    def _allocate_subnet(self, prefix: int) -> str:
        reserved = _single_address_block(self.network)
        for candidate in self._candidate_subnets(prefix):
            if _overlap(candidate, reserved):
                continue
            if any(_overlap(candidate, used) for used in self._used_subnets):
                continue
            if any(ipaddress.ip_address(a) in candidate for a in self._used_addresses):
                continue
            self._used_subnets.add(candidate)
            return str(candidate)
        raise PoolExhausted(self.name)

    def mark_used(self, name: str) -> None:
        """Records an address or subnet the inventory already assigned."""
        network = _parse(name)
        if network.num_addresses == 1:
            self._used_addresses.add(int(network.network_address))
        else:
            self._used_subnets.add(network)

    def release(self, name: str) -> None:
        network = _parse(name)
        if network.num_addresses == 1:
            self._used_addresses.discard(int(network.network_address))
        else:
            self._used_subnets.discard(network)

    @property
    def allocated_count(self) -> int:
        return len(self._used_addresses) + len(self._used_subnets)


def _single_address_block(network: Network) -> Network:
    """The IPv6 pool's first /64, which holds its gateway and its single addresses."""
    size = max(network.prefixlen, SINGLE_ADDRESS_SUBNET)
    return cast(Network, next(iter(network.subnets(new_prefix=size))))


def _overlap(one: Network, other: Network) -> bool:
    return one.version == other.version and one.overlaps(other)


def _parse(name: str) -> Network:
    """`203.0.113.7` -> 203.0.113.7/32; `2001:db8:0:1::/64` -> that network."""
    return ipaddress.ip_network(name, strict=True)


def family_of(name: str) -> str:
    return IPv4 if _parse(name).version == 4 else IPv6
