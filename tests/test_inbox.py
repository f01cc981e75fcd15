"""Experience transport: credits bound what is in flight, and a simulator killed in the middle
of a message costs only its own connection (a shared multiprocessing.Queue would hang)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np

from d3q_core.backends.local.inbox import ExperienceInbox, ExperienceSender, InboxAddress
from tests.helpers import REPO


def receive_until(inbox: ExperienceInbox, predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        inbox.receive(timeout=0.02)


def test_messages_arrive_in_order_and_credits_hold_senders_back():
    where = InboxAddress.new()
    inbox = ExperienceInbox(where)
    stop = threading.Event()
    sender = ExperienceSender(where, credits=2, stop=stop)
    try:
        assert sender.send((0, np.arange(3), None)) and sender.send((0, np.arange(4), None))
        receive_until(inbox, lambda: inbox.pending() == 2)
        blocked = threading.Thread(target=sender.send, args=((0, np.arange(5), None),))
        blocked.start()
        time.sleep(0.3)
        assert blocked.is_alive()  # no credit left: the third batch waits
        assert len(inbox.peek()[1]) == 3
        assert sender.send((0, np.arange(9), None), wait=False) is False  # would wait
        inbox.done()  # inserted: one credit goes back
        blocked.join(timeout=5)
        assert not blocked.is_alive()
        receive_until(inbox, lambda: inbox.pending() == 2)
        assert len(inbox.peek()[1]) == 4
        inbox.done()
        assert len(inbox.peek()[1]) == 5
        # a stopping run releases a sender that waits for credit
        other = ExperienceSender(where, credits=1, stop=stop)
        assert other.send((1, np.arange(1), None))
        stop.set()
        assert other.send((1, np.arange(1), None)) is False
        other.close()
    finally:
        sender.close()
        inbox.close()


HALF_A_MESSAGE = """
import os, signal, struct, sys
from multiprocessing.connection import Client
from d3q_core.backends.local.inbox import InboxAddress
where = InboxAddress(bytes.fromhex(sys.argv[1]).decode(), bytes.fromhex(sys.argv[2]))
conn = Client(where.address, family="AF_UNIX", authkey=where.authkey)
conn._send(struct.pack("!i", 1_000_000) + b"x" * 1000)  # a header for 1 MB, then 1 KB
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_sender_killed_mid_message_costs_only_its_connection():
    where = InboxAddress.new()
    inbox = ExperienceInbox(where)
    try:
        proc = subprocess.run([sys.executable, "-c", HALF_A_MESSAGE, where.address.encode().hex(),
                               where.authkey.hex()], cwd=REPO, timeout=60)
        assert proc.returncode == -9
        done = threading.Event()

        def drain() -> None:  # would block forever if the half message were waited on
            receive_until(inbox, lambda: inbox.lost == 1)
            done.set()

        t = threading.Thread(target=drain, daemon=True)
        t.start()
        t.join(timeout=10)
        assert done.is_set() and inbox.pending() == 0 and inbox.connections == 0
        # the restarted simulator connects again and gets through
        sender = ExperienceSender(where, credits=4, stop=threading.Event())
        assert sender.send((0, np.arange(7), None))
        receive_until(inbox, lambda: inbox.pending() == 1)
        assert len(inbox.peek()[1]) == 7
        sender.close()
    finally:
        inbox.close()


def test_a_wrong_key_is_refused_and_the_inbox_keeps_serving():
    where = InboxAddress.new()
    inbox = ExperienceInbox(where)
    try:
        intruder = InboxAddress(where.address, b"not the key")
        try:
            ExperienceSender(intruder, credits=1, stop=threading.Event(), connect_timeout=2)
            raised = False
        except Exception:
            raised = True
        assert raised
        sender = ExperienceSender(where, credits=1, stop=threading.Event())
        assert sender.send((1, np.arange(2), None))
        receive_until(inbox, lambda: inbox.pending() == 1)
        assert inbox.connections == 1
        sender.close()
    finally:
        inbox.close()


def test_an_idle_or_wrong_connection_cannot_block_the_next_simulator():
    """A local process that connects and never authenticates (or uses a wrong key) is cut off
    after the handshake deadline; a simulator connecting meanwhile gets in at once."""
    import socket

    where = InboxAddress.new()
    inbox = ExperienceInbox(where, handshake_seconds=1.0)
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        idle.connect(where.address)
        time.sleep(0.2)
        t0 = time.monotonic()
        sender = ExperienceSender(where, credits=2, stop=threading.Event())
        assert time.monotonic() - t0 < 0.5  # not held up by the idle one
        assert sender.send((0, np.arange(3), None))
        receive_until(inbox, lambda: inbox.pending() == 1)
        assert inbox.connections == 1
        idle.settimeout(5.0)
        idle.recv(1024)  # the challenge, then nothing: the inbox hangs up after the deadline
        assert idle.recv(1024) == b""
        wrong = InboxAddress(where.address, b"not the key")
        try:
            ExperienceSender(wrong, credits=1, stop=threading.Event(), connect_timeout=2.0)
            raised = False
        except Exception:  # noqa: BLE001 - multiprocessing's AuthenticationError or EOF
            raised = True
        assert raised and inbox.connections == 1
        sender.close()
    finally:
        idle.close()
        inbox.close()
