"""The kernel's own connection counters: `/proc/net/snmp` (and `/proc/net/snmp6` for UDP over IPv6).

`Tcp: ActiveOpens` counts the connections this machine opened (connect), `PassiveOpens` those it
accepted, `AttemptFails` the opens that failed (refused, timed out, reset while opening),
`EstabResets` the established connections reset; the TCP counters cover IPv4 and IPv6. `Udp:
InDatagrams/OutDatagrams` count datagrams, IPv4 from `/proc/net/snmp` plus IPv6 from
`/proc/net/snmp6`. Counted by the kernel whether or not anyone polled: set against the
connections a poll saw, they say how much was not seen.

A reader only: a missing, unreadable or malformed file gives None (or leaves out what it lacks),
never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

SNMP = Path("/proc/net/snmp")
SNMP6 = Path("/proc/net/snmp6")


@dataclass(frozen=True, slots=True)
class KernelCounts:
    """The counters, or (from `since`) how much each moved."""

    active_opens: int
    passive_opens: int
    attempt_fails: int
    estab_resets: int
    udp_in: int
    udp_out: int

    @property
    def opens(self) -> int:
        """TCP connections opened either way: each end on this machine is one."""
        return self.active_opens + self.passive_opens

    def since(self, start: KernelCounts) -> KernelCounts:
        """How much each counter moved since `start`."""
        return KernelCounts(*(getattr(self, name) - getattr(start, name) for name in _NAMES))


_NAMES = tuple(field.name for field in fields(KernelCounts))


def parse_snmp(text: str) -> dict[str, dict[str, int]]:
    """`/proc/net/snmp`'s pairs of lines (`Tcp: names…` then `Tcp: values…`) as {group: {name: value}}."""
    groups: dict[str, dict[str, int]] = {}
    lines = text.splitlines()
    for names_line, values_line in zip(lines[::2], lines[1::2], strict=False):
        group, _, names = names_line.partition(":")
        value_group, _, values = values_line.partition(":")
        if group != value_group:
            continue
        try:
            groups[group] = dict(zip(names.split(), map(int, values.split()), strict=True))
        except ValueError:  # a short or non-numeric line: that group is left out
            continue
    return groups


def parse_snmp6(text: str) -> dict[str, int]:
    """`/proc/net/snmp6`'s `name value` lines as {name: value}."""
    counters: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counters[parts[0]] = int(parts[1])
    return counters


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except (OSError, ValueError):
        return ""


def read_kernel_counts(snmp: Path = SNMP, snmp6: Path = SNMP6) -> KernelCounts | None:
    """The counters now, or None when `/proc/net/snmp` is missing or lacks them."""
    groups = parse_snmp(_read(snmp))
    tcp, udp = groups.get("Tcp", {}), groups.get("Udp", {})
    udp6 = parse_snmp6(_read(snmp6))
    try:
        return KernelCounts(
            tcp["ActiveOpens"],
            tcp["PassiveOpens"],
            tcp["AttemptFails"],
            tcp["EstabResets"],
            udp["InDatagrams"] + udp6.get("Udp6InDatagrams", 0),
            udp["OutDatagrams"] + udp6.get("Udp6OutDatagrams", 0),
        )
    except KeyError:
        return None
