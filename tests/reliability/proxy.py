"""A loopback HTTP proxy in front of an emulator that can spoil the first download of each video."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

Spoil = Literal["cut", "short", "corrupt", "missing"]


class SpoilingProxy:
    """Forwards everything to the emulator (keeping the Host header, so the emulator's video
    URLs point back here) and spoils the first answer for each video file:

    - `cut`: announces the full length, sends half, drops the connection;
    - `short`: announces and sends half (a consistent but truncated body);
    - `corrupt`: the full length, with bytes flipped in the middle of the file;
    - `missing`: 404 for every video, until `spoil` is changed.
    """

    def __init__(self, upstream: str, spoil: Spoil) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.spoil = spoil
        self.spoiled: list[str] = []
        self.downloads: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                proxy.forward(self)

            def do_POST(self) -> None:
                proxy.forward(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.root_url = f"http://127.0.0.1:{self.port}"

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else None
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
        connection.request(handler.command, handler.path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        connection.close()
        spoil = None
        if handler.path.startswith("/files/") and self.spoil == "missing":
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if handler.path.startswith("/files/") and answer.status == 200:
            with self._lock:
                self.downloads.append(handler.path)
                if handler.path not in self.spoiled:
                    self.spoiled.append(handler.path)
                    spoil = self.spoil
        handler.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                handler.send_header(name, value)
        if spoil == "cut":
            handler.send_header("Content-Length", str(len(data)))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(data[: len(data) // 2])
            handler.close_connection = True
            return
        if spoil == "short":
            data = data[: len(data) // 2]
        elif spoil == "corrupt":
            middle = bytearray(data)
            for i in range(len(data) // 3, len(data) // 3 + 64):
                middle[i] ^= 0xFF
            data = bytes(middle)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@contextmanager
def spoiling_proxy(upstream: str, spoil: Spoil) -> Iterator[SpoilingProxy]:
    proxy = SpoilingProxy(upstream, spoil)
    thread = threading.Thread(target=proxy.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
