"""The supervisor's handle on a role: waiting for the role's first word reads nothing."""

from __future__ import annotations

import os
import socket

from hacluster.roles.process import RoleProcess


def _child(sock: socket.socket, parent: int) -> int:
    if sock.recv(2) == b"go":  # says nothing until asked to
        sock.sendall(b"first")
    sock.recv(1)  # until the parent is done
    return 0


def test_waiting_for_a_role_s_first_word_leaves_it_unread() -> None:
    role = RoleProcess()
    assert not role.wait_heard(0.01)  # nothing forked yet
    role._fork(_child)
    try:
        assert role._sock is not None
        assert not role.wait_heard(0.0)
        role._sock.sendall(b"go")
        assert role.wait_heard(30.0)
        assert role._sock.recv(16) == b"first"
        role._sock.sendall(b"x")
    finally:
        assert role.pid is not None
        os.waitpid(role.pid, 0)
