"""A real PostgreSQL server for the store's tests: a throwaway cluster in a temporary folder.

``PostgresServer.start()`` finds PostgreSQL's binaries (Debian's /usr/lib/postgresql/N/bin,
else ``pg_config --bindir``), installing Debian's ``postgresql`` package when they are
missing (with sudo when not root, as ``make chromium`` does); runs ``initdb`` as a non-root
user (PostgreSQL refuses root: the system user ``dnnmeter-pg`` is made when the tests run as
root); and starts the server on a free local port, its unix socket in the same folder.
Connections over TCP need a password (scram-sha-256), so a wrong one is refused as it would
be on a real server. ``stop()`` stops it; ``remove()`` deletes the folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "dnnmeter"  # the role the tests connect as
PASSWORD = "pw-s3cret-4-tests"
SUPERUSER_PASSWORD = "super-s3cret"
OS_USER = "dnnmeter-pg"  # the system user the server runs as when the tests run as root


class Unavailable(Exception):
    """PostgreSQL cannot be found or installed here; the message says why."""


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    return None


def install() -> Path:
    """The binaries' folder, installing Debian's postgresql package if needed."""
    found = _bindir()
    if found is not None:
        return found
    if shutil.which("apt-get") is None:
        raise Unavailable("PostgreSQL is not installed and there is no apt-get to install it")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install_cmd = [*sudo, "apt-get", "install", "-y", "-q", "postgresql"]
    done = subprocess.run(install_cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], capture_output=True, env=env)
        done = subprocess.run(install_cmd, capture_output=True, text=True, env=env)
    found = _bindir()
    if found is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Unavailable(f"PostgreSQL is not installed and `apt-get install postgresql` failed: {tail[0]}")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        self.bindir = install()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if subprocess.run(["id", "-u", OS_USER], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER],
                               check=True, capture_output=True)
            self.as_user = ["runuser", "-u", OS_USER, "--"]
        self.root = Path(tempfile.mkdtemp(prefix="dnnmeter-pg-"))
        os.chmod(self.root, 0o700)
        if self.as_user:
            shutil.chown(self.root, OS_USER, OS_USER)
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = _free_port()
        self._databases = 0
        self._initdb()

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.as_user, *argv], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr or done.stdout}\n{log}")
        return done

    def _initdb(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        if self.as_user:
            shutil.chown(pwfile, OS_USER, OS_USER)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions")

    def start(self) -> None:
        # fsync off: a test server need not survive a power cut; commits still reach the
        # server's WAL before they are acknowledged (synchronous_commit stays on).
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")
        self.sql(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{USER}') THEN "
                 f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'; END IF; END $$")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run ``statement`` as the superuser over the unix socket (psql)."""
        return self._run(str(self.bindir / "psql"), "-h", str(self.root), "-p", str(self.port), "-U", "postgres",
                         "-d", database, "-v", "ON_ERROR_STOP=1", "-tA", "-c", statement).stdout.strip()

    def new_database(self) -> str:
        """A fresh, empty database owned by the test user; its URL (password included)."""
        self._databases += 1
        name = f"dnnmeter_{self._databases}"
        self.sql(f"CREATE DATABASE {name} OWNER {USER}")
        return self.url(name)

    def url(self, database: str, password: str = PASSWORD, host: str = "127.0.0.1", port: int | None = None) -> str:
        return f"postgresql+psycopg://{USER}:{password}@{host}:{port or self.port}/{database}"
