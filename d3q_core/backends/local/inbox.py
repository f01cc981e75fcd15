"""Experience transport from simulators to the replay: one socket per simulator incarnation.

A multiprocessing.Queue shared by all simulators cannot survive one of them being killed: a
writer killed inside `put` keeps the queue's write lock forever (every other writer then
blocks) or leaves half a message in the pipe (the reader then blocks). Here each simulator
connects its own Unix socket to a listener in the replay process, so a killed simulator
costs only its own connection (the replay sees EOF and drops it) and its restart simply
connects again.

Flow control is by credits: a simulator may have `credits` batches not yet inserted; the
replay reads every connection eagerly (so a send never blocks on a full socket) and returns
one credit per batch once the rate limiter lets it into the memory. Memory stays bounded by
simulators x credits batches, and a slow learner holds the simulators back.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import (
    Client,
    Connection,
    Listener,
    answer_challenge,
    deliver_challenge,
    wait,
)
from typing import Any

ACK = b"+"
# a connecting simulator answers the authentication challenge within milliseconds; a peer
# that has not after this long is cut off, so it cannot hold up the next one
HANDSHAKE_SECONDS = 5.0


@dataclass(frozen=True)
class InboxAddress:
    """Where the replay listens (a Linux abstract socket: nothing on disk) and the key that
    keeps other local processes out. Picklable, made by the orchestrator."""

    address: str
    authkey: bytes = field(repr=False)

    @staticmethod
    def new() -> InboxAddress:
        return InboxAddress(f"\0d3q-{os.getpid()}-{secrets.token_hex(6)}",
                            secrets.token_bytes(16))


class ExperienceInbox:
    """Replay side: accepts simulator connections in a thread, reads every message as soon as
    it arrives (`receive`), and hands them out oldest first: `peek` at the next one, `done`
    once it is in the memory."""

    def __init__(self, where: InboxAddress, handshake_seconds: float = HANDSHAKE_SECONDS):
        # no authkey here: Listener.accept would authenticate inline, and one idle local
        # connection would then block every later accept (a restarted simulator's too);
        # each connection is authenticated in a thread of its own, with a deadline
        self._authkey, self._handshake_seconds = where.authkey, handshake_seconds
        self._listener = Listener(where.address, family="AF_UNIX", backlog=64)
        self._new: deque[Connection] = deque()
        self._conns: list[Connection] = []
        self._waiting: deque[tuple[Connection, Any]] = deque()
        self._closed = False
        self.lost = 0  # connections that ended (a simulator exited or was killed)
        threading.Thread(target=self._accept, name="inbox-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except Exception:  # the listener closing
                if self._closed:
                    return
                continue
            threading.Thread(target=self._authenticate, args=(conn,), name="inbox-auth",
                             daemon=True).start()

    def _authenticate(self, conn: Connection) -> None:
        """The challenge both ways, as Listener(authkey=...) does, but a peer that does not
        answer within the deadline is cut off (shutdown wakes the blocked read)."""
        timer = threading.Timer(self._handshake_seconds, _cut_off, args=(conn,))
        timer.daemon = True
        timer.start()
        try:
            deliver_challenge(conn, self._authkey)
            answer_challenge(conn, self._authkey)
        except Exception:  # a wrong key, a peer that left, or the deadline
            conn.close()
            return
        finally:
            timer.cancel()
        if self._closed:
            conn.close()
        else:
            self._new.append(conn)

    @property
    def connections(self) -> int:
        return len(self._conns)

    def pending(self) -> int:
        return len(self._waiting)

    def _drop(self, conn: Connection) -> None:
        """Forget a dead connection; its messages already read are whole and still used."""
        if conn in self._conns:
            self._conns.remove(conn)
            self.lost += 1
        conn.close()

    def receive(self, timeout: float = 0.0, wake: Any = None) -> bool:
        """Read whatever has arrived on any connection, waiting up to `timeout` for
        something to, or for `wake` (a port with a `waitable`, left unread: the learner's
        answers) to become ready; returns whether any simulator's message did."""
        also: Sequence[Any] = () if wake is None else (wake.waitable,)
        while self._new:
            self._conns.append(self._new.popleft())
        watched = [*self._conns, *also]
        if not watched:
            if timeout > 0:
                time.sleep(timeout)
            return False
        ready = [c for c in wait(watched, timeout) if c not in also]
        for conn in ready:
            try:
                while conn.poll():
                    self._waiting.append((conn, conn.recv()))
            except (EOFError, OSError):  # the simulator is gone; its restart reconnects
                self._drop(conn)
        return bool(ready)

    def peek(self) -> Any | None:
        return self._waiting[0][1] if self._waiting else None

    def done(self) -> None:
        """The message from `peek()` went into the memory: return its credit."""
        conn, _ = self._waiting.popleft()
        if conn.closed:
            return
        try:
            conn.send_bytes(ACK)
        except OSError:
            self._drop(conn)

    def close(self) -> None:
        self._closed = True
        for conn in self._conns:
            conn.close()
        self._listener.close()


def _cut_off(conn: Connection) -> None:
    try:
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


class ExperienceSender:
    """Simulator side: connects (retrying while the replay starts up) and sends batches,
    waiting for a credit when `credits` batches are still outstanding."""

    def __init__(self, where: InboxAddress, credits: int, stop: Any,
                 connect_timeout: float = 120.0):
        self.credits = max(1, int(credits))
        self.outstanding = 0
        self._stop = stop
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self._conn: Connection | None = Client(where.address, family="AF_UNIX",
                                                       authkey=where.authkey)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if stop.is_set():
                    self._conn = None
                    return
                if time.monotonic() > deadline:
                    raise ConnectionError("the replay is not accepting experiences") from None
                time.sleep(0.05)

    def send(self, message: Any, wait: bool = True) -> bool:
        """False when the run is stopping or the replay has gone (the simulator should end),
        or, with wait=False, when no credit is free right now."""
        conn = self._conn
        if conn is None:
            return False
        try:
            while True:
                while conn.poll():
                    conn.recv_bytes()
                    self.outstanding -= 1
                if self.outstanding < self.credits:
                    break
                if self._stop.is_set() or not wait:
                    return False
                conn.poll(0.05)
            conn.send(message)
        except (EOFError, OSError):
            return False
        self.outstanding += 1
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
