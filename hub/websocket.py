"""uvicorn's WebSocket protocol, plus batched writes for live events and a way to cut off a peer that stopped reading.

Over ASGI an application can only send, one message at a time, and a send to a peer that does not read waits
(uvicorn holds it until the transport drains) without end: the keepalive was the only thing that ever ended such a
connection. The hub needs three things ASGI does not give, offered here as the scope extension
``lotpulse.websocket`` (the protocol object itself):

- ``queue_text``: a live event reaches every subscription on a socket in the same turn of the event loop; their
  messages are framed as they come and written together at the end of that turn, one write (one system call) per
  socket instead of one per subscription. Anything sent the ordinary way flushes them first, so order is kept.
- ``accepting_writes``: whether the transport is taking writes at all (False once its buffer is over the high-water
  mark: the peer is not reading).
- ``force_close``: a close that does not wait behind the writes it is meant to stop (schema/ws.py cuts off a
  subscriber that fell behind).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.http11 import Request

EXTENSION = "lotpulse.websocket"
ABORT_AFTER_SECONDS = 30.0  # a cut-off peer gets this long to read what was left for it, then the socket is reset


class HubWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch: list[str] = []

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # accepted: the application task has been created but has not run yet
            self.scope["extensions"][EXTENSION] = self  # type: ignore[assignment]

    @property
    def accepting_writes(self) -> bool:
        """False while the transport's buffer is over its high-water mark (the peer is not reading)."""
        return self.writable.is_set()

    def queue_text(self, text: str) -> None:
        """Send ``text`` at the end of this turn of the event loop, in one write with the others queued in it."""
        if not self.batch:
            self.loop.call_soon(self.flush)
        self.batch.append(text)

    def flush(self) -> None:
        texts, self.batch = self.batch, []
        if not texts or self.close_sent or self.disconnected or self.transport.is_closing():
            return
        try:
            for text in texts:
                self.conn.send_text(text.encode())
        except InvalidState:  # the peer is closing: its disconnect ends the operations
            return
        self.transport.write(b"".join(self.conn.data_to_send()))

    async def send(self, message: Any) -> None:
        self.flush()  # what was queued before goes first
        await super().send(message)

    def force_close(self, texts: list[str], code: int, reason: str) -> None:
        """Write ``texts`` and a close frame past the flow control, and stop.

        What was queued before stays ahead of them, so a peer that reads again gets its messages, then ``texts``,
        then the close code. One that never reads is reset after ``ABORT_AFTER_SECONDS``; either way the
        application hears a disconnect now and its operations end.
        """
        self.flush()
        if self.close_sent or self.transport.is_closing():
            return
        for text in texts:
            self.conn.send_text(text.encode())
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.read_paused:  # the peer's close reply has to be read for the closing handshake to end
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(ABORT_AFTER_SECONDS, self.transport.abort)
