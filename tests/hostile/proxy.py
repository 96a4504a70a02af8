"""A freezable loopback TCP proxy: put it in front of a real server to make it go dark.

`FreezingProxy(port)` listens on a loopback port of its own and forwards every
connection to `127.0.0.1:port`, both ways, in threads of its own (independent of the
test's event loop, like the hostile kit). `freeze()` turns the connections open at that
moment into a dead peer: nothing is forwarded or read any more in either direction, and
the sockets stay open, as with a peer whose host vanished. Connections made afterwards
are forwarded normally, so a client that notices and reconnects reaches the server.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from types import TracebackType
from typing import Self

__all__ = ["FreezingProxy"]

_POLL = 0.05  # seconds between checks of the stop and freeze flags


class _Pair:
    """One proxied connection: the client's socket and ours to the server."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.frozen = threading.Event()

    def pump(self, stopping: threading.Event) -> None:
        peers = {self.client: self.server, self.server: self.client}
        try:
            while not stopping.is_set():
                if self.frozen.is_set():
                    # Dark: read nothing, send nothing, keep the sockets open.
                    stopping.wait(_POLL)
                    continue
                readable, _, _ = select.select(list(peers), [], [], _POLL)
                for sock in readable:
                    data = sock.recv(256 * 1024)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in peers:
                with contextlib.suppress(OSError):
                    sock.close()


class FreezingProxy:
    """Forward loopback TCP to a server's port; `freeze()` makes the open connections dark.

    Attributes:
        port: The proxy's own port, once the `with` block is entered.
        connections: How many connections it accepted.
    """

    def __init__(self, target_port: int) -> None:
        """Prepare a proxy to `127.0.0.1:target_port`; it listens inside `with`."""
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._stopping = threading.Event()
        self._pairs: list[_Pair] = []
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def url(self, options: str = "") -> str:
        """The proxy's `grpc://` URL (plain TCP), with `options` appended to the query."""
        return f"grpc://127.0.0.1:{self.port}?ssl=false{options}"

    def freeze(self) -> None:
        """Make every connection open now dark, both ways, for good."""
        with self._lock:
            for pair in self._pairs:
                pair.frozen.set()

    def __enter__(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(_POLL)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._start(self._accept)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(5)
        if self._listener is not None:
            self._listener.close()

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            pair = _Pair(client, server)
            with self._lock:
                self.connections += 1
                self._pairs.append(pair)
            self._start(pair.pump, self._stopping)
