"""A throwaway PostgreSQL 16 server for the tests, from the `pgserver` wheel of the `test` extra.

No apt package, no service manager: `pip install -e '.[test]'` brings the server binaries, and the tests
start one server per session with its data in a fresh temporary directory, listening on 127.0.0.1 only
(no Unix socket), trust authentication for the `postgres` role. Only the binaries of the wheel are used
(not its Python API): the tests need a TCP address like a remote server's, and to stop and restart the
server mid-sweep.

PostgreSQL refuses to run as root; under root (CI, containers) the server runs as the unprivileged user
`nobody`, which therefore owns the data directory and needs to traverse the folders above the binaries.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

UNPRIVILEGED_USER = "nobody"


def binaries() -> Path:
    """`pgserver/pginstall/bin`, found without importing pgserver (its import warns about XDG_RUNTIME_DIR)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the pgserver package is missing: pip install -e '.[test]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _let_others_traverse(path: Path) -> None:
    """Add o+x (search only, not read) to `path` and the folders above it where it is missing."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


class PostgresServer:
    """One PostgreSQL server: `start()`, `stop()`, `url(database)`, `create_database(name)`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = free_port()
        self.bin = binaries()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            _let_others_traverse(self.bin)
            shutil.chown(root, user=UNPRIVILEGED_USER)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "utf8", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        group = pwd.getpwnam(UNPRIVILEGED_USER).pw_gid  # its own group: `nogroup` on Debian, `nobody` elsewhere
        user = {"user": UNPRIVILEGED_USER, "group": group, "extra_groups": []} if self._as_root else {}
        result = subprocess.run(
            [str(self.bin / program), *args], capture_output=True, text=True, timeout=60, cwd=self.root, **user
        )
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed:\n{result.stdout}{result.stderr}\n{log}")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every client connection at once, like a restart by an administrator."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        """The plain URL a user types (no driver name)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A started server in a fresh temporary directory, stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="trainscope-postgres-"))
    try:
        server = PostgresServer(root)
        server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(RuntimeError):
                server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)
