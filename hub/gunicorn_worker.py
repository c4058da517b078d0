"""gunicorn's sync worker with TCP_NODELAY on each connection.

The sync worker writes a response's headers and body in two sends; with Nagle's algorithm on,
the body waits for the client's delayed ACK of the headers (40 ms on Linux), which caps every
webhook sender at about 25 requests a second.
"""

import socket

from gunicorn.workers.sync import SyncWorker


class NoDelaySyncWorker(SyncWorker):
    def handle(self, listener, client, addr):
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # a Unix socket has no Nagle to turn off
            pass
        super().handle(listener, client, addr)
