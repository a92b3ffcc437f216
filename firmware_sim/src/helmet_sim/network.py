"""A network cable between a simulated locker and the broker, which a scenario can pull.

A small TCP relay on a loopback port: the locker connects to it instead of the
broker. ``unplug()`` cuts every connection and refuses new ones, as a dead
mobile link does; ``plug()`` restores service. The locker sees exactly what it
would see on the street: a socket that dies and reconnects that fail.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from helmet_sim.broker import free_port


class Cable:
    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._plugged = threading.Event()
        self._plugged.set()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._closed = False
        threading.Thread(target=self._accept, name=f"cable-{self.port}", daemon=True).start()

    @property
    def plugged(self) -> bool:
        return self._plugged.is_set()

    def unplug(self) -> None:
        self._plugged.clear()
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def plug(self) -> None:
        self._plugged.set()

    def close(self) -> None:
        self._closed = True
        self.unplug()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._plugged.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            # The 5 s were for connecting: a link quiet for longer (between MQTT keepalives) must stay up.
            upstream.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                for s in (src, dst):
                    self._open.discard(s)
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
