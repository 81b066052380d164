"""A warm parent for PDF validation children: pyHanko loaded once, one child forked per package.

``exchange.trust.pdf_bounded`` starts one per server process
(``python -m exchange.trust.pdf_zygote SOCKET``). It listens on a Unix socket; for each
connection it forks a child that writes its process id, then reads the request, caps its own
address space and answers (``exchange.trust.pdf_signatures.judge_request``). The process that
asked kills that child if it runs past the deadline. Forking a process with pyHanko loaded costs
milliseconds where starting an interpreter costs a second or more. The zygote ends when its
parent's end of its standard input closes (the server stopped or died).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading

# Loaded once, before any fork, so that every child starts with them.
import pyhanko.sign.validation.pdf_embedded  # noqa: F401
import pyhanko_certvalidator  # noqa: F401

from exchange.trust.pdf_signatures import judge_request

READY = b"ready\n"


def main(path: str) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    while True:
        connection, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            try:
                _serve(connection)
            finally:
                os._exit(0)
        connection.close()


def _serve(connection: socket.socket) -> None:
    with connection, connection.makefile("rb") as reading, connection.makefile("wb") as writing:
        writing.write(f"{os.getpid()}\n".encode())
        writing.flush()
        judge_request(reading, writing)


def _exit_with_parent() -> None:
    sys.stdin.buffer.read()  # returns at end of file: whoever started this zygote is gone
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
