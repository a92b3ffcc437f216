"""A private PostgreSQL cluster on a free port, which a test may crash and restart.

The machine's shared PostgreSQL must not be restarted under other people's
tests, so this makes its own with ``initdb`` and ``pg_ctl``. PostgreSQL
refuses to run as root: as root, the cluster runs as the ``postgres`` user
through ``runuser``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from helmet_sim.broker import free_port, wait_port


class PrivatePostgresError(RuntimeError):
    """This machine cannot run a private cluster (no binaries, or root without a postgres user)."""


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise PrivatePostgresError("initdb is not installed (apt-get install postgresql)")
    return Path(initdb).parent


class PrivatePostgres:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.as_user: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="helmet-pg-"))
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                owner = None
            if runuser is None or owner is None:
                raise PrivatePostgresError("running as root without runuser and a postgres user")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.as_user = [runuser, "-u", "postgres", "--"]
        self.data = self.root / "data"
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True, capture_output=True, timeout=120)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        wait_port(self.port)

    def crash(self) -> None:
        """Stop at once, as a crash does: no checkpoint, clients cut off; recovery runs at the next start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
