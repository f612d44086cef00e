"""The dashboard's reader of the kernel's destroy events: a thread of its own, batches handed on.

`subscribe` decides whether the dashboard can have destroy events (only with the netlink source,
whose keys are the cookies the events carry) and says why not. `DestroyFeed` reads the listener
on its own thread, so the UI thread never waits on it, and hands each batch of destroyed sockets
to `on_batch` (the dashboard gives them to its engine), at most one batch per `PACE` seconds.
It reads as the events come, so a burst of closes does not wait in (and overflow) the kernel's
receive buffer; between two hand-offs they gather in one list. Knows nothing of Textual.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable

from conntui.model import Socket
from conntui.poller import Poller, Polling
from conntui.sources.destroy_events import DestroyEventsLost, DestroyEventsUnavailable, DestroyListener

PACE = 0.25  # seconds between two batches: at most four redraws a second for them


def subscribe(poller: Polling) -> tuple[DestroyListener | None, str]:
    """A listener for the poller's kinds, or None and why not ("" for a poller that is not this machine's)."""
    if not isinstance(poller, Poller):  # a replay (tests): no machine to listen to
        return None, ""
    if poller.source.name != "netlink":
        return None, f"the {poller.source.name} backend has no destroy events"
    try:
        return DestroyListener(poller.kinds), ""
    except DestroyEventsUnavailable as error:
        return None, str(error)


class DestroyFeed:
    def __init__(
        self,
        listener: DestroyListener,
        on_batch: Callable[[list[Socket], float], object],
        on_lost: Callable[[str], object],
    ) -> None:
        self.listener = listener
        self.on_batch, self.on_lost = on_batch, on_lost  # called on the feed's thread
        self._stopping = threading.Event()
        self._wake_reader, self._wake_writer = socket.socketpair()  # stop() ends the thread's wait at once
        self._thread = threading.Thread(target=self._run, name="conntui-destroy-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the thread, then close the listener; once, however often it is called."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake_writer.send(b"\0")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.listener.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _run(self) -> None:
        """Read as the events come (a burst must not overflow the kernel's buffer while we wait),
        hand them on at most once per PACE."""
        batch: list[Socket] = []
        read_at = handed_at = 0.0
        while not self._stopping.is_set():
            wait = max(0.0, handed_at + PACE - time.monotonic()) if batch else None
            readable = select.select([self.listener.fileno(), self._wake_reader.fileno()], [], [], wait)[0]
            if self._stopping.is_set():
                return
            if self.listener.fileno() in readable:
                if not batch:
                    read_at = time.time()  # the batch's time: when its first socket was read
                batch += self._drain()
            if batch and time.monotonic() >= handed_at + PACE:
                self.on_batch(batch, read_at)
                batch, handed_at = [], time.monotonic()

    def _drain(self) -> list[Socket]:
        """Every destroyed socket waiting, without blocking."""
        batch: list[Socket] = []
        while True:
            try:
                ended = self.listener.receive(timeout=0)
            except DestroyEventsLost as error:
                with contextlib.suppress(Exception):  # the dashboard may be going away
                    self.on_lost(str(error))
                continue
            if not ended:
                return batch
            batch += ended
