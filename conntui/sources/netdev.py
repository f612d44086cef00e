"""The host's received and transmitted bytes, summed over its interfaces, from /proc/net/dev.

Linux only: elsewhere (or when the file cannot be read) `read_host_bytes` returns None and the
overview leaves the host's rates out. The loopback interface is left out: it carries the local
connections twice over and says nothing of the host's traffic with the world.
"""

from __future__ import annotations

from pathlib import Path

NET_DEV = Path("/proc/net/dev")
LOOPBACK = "lo"


def read_host_bytes(path: Path = NET_DEV) -> tuple[int, int] | None:
    """(bytes received, bytes transmitted) by every interface but loopback, or None when unknown."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return parse_net_dev(text)


def parse_net_dev(text: str) -> tuple[int, int] | None:
    """The sums from /proc/net/dev's text (two header lines, then `name: rx bytes … tx bytes …`)."""
    received = transmitted = 0
    seen = False
    for line in text.splitlines()[2:]:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if len(fields) < 9:
            continue
        seen = True
        if name.strip() == LOOPBACK:
            continue
        received += int(fields[0])
        transmitted += int(fields[8])
    return (received, transmitted) if seen else None
