"""Free TCP ports on loopback, for children that cannot pick their own and tell it, and
whether an address can be listened on.

The one helper of the package (the dev cluster keeps its own: it shares no code). The dev
cluster itself picks its port through its launcher; this is for the controller, ``git
daemon`` and the like, in the demo, the benchmarks and the tests.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nobody listens on now (another process may take it before the child binds it)."""
    return port_or_free(0)


def port_or_free(preferred: int) -> int:
    """``preferred`` when nobody listens there, else any free port."""
    for candidate in dict.fromkeys((preferred, 0)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
            return port
    raise OSError("no free TCP port on 127.0.0.1")


def check_free(host: str, port: int) -> None:
    """Raise OSError saying why ``host:port`` cannot be listened on (in use, no such address),
    so that a command can say so in one line before it starts anything."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise OSError(e.errno, f"cannot listen on {host}:{port}: "
                                   f"{e.strerror or e}") from e
