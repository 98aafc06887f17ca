"""Debian's nginx as a reverse proxy of the test's own: a process started from a
configuration generated in a temporary folder (never the system service), terminating
TLS with a fresh self-signed certificate for ``localhost`` and sending requests round
robin to Sekisho instances, with the headers docs/deployment.md tells operators to set."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.ports import free_port

CONFIG = """
daemon off;
master_process on;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log notice;
{user}
events {{ worker_connections 256; }}
http {{
    log_format sekisho_noquery '$remote_addr [$time_local] "$request_method $uri" $status $request_id';
    access_log {folder}/access.log sekisho_noquery;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;

    upstream sekisho {{
{servers}
        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {folder}/cert.pem;
        ssl_certificate_key {folder}/key.pem;
        client_max_body_size 64k;
        location / {{
            proxy_pass http://sekisho;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-ID $request_id;
        }}
    }}
}}
"""


class NginxProxy:
    """``https://localhost:PORT`` in front of the Sekisho instances on ``upstreams``."""

    def __init__(self, folder: Path, upstreams: list[int]) -> None:
        self.folder = folder
        self.port = free_port()
        self.origin = f"https://localhost:{self.port}"
        self.upstreams = upstreams
        self._process: subprocess.Popen[bytes] | None = None
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_certificate()

    @property
    def certificate(self) -> str:
        return str(self.folder / "cert.pem")

    def tls(self) -> ssl.SSLContext:
        """A client context that trusts this proxy's certificate only."""
        return ssl.create_default_context(cafile=self.certificate)

    def start(self) -> NginxProxy:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        assert Path(binary).exists(), "nginx is missing: scripts/test installs Debian's nginx"
        servers = "\n".join(f"        server 127.0.0.1:{port};" for port in self.upstreams)
        # The master starts as root only when the tests run as root; its worker then
        # needs no other user's permissions for these files.
        user = "user root root;" if os.geteuid() == 0 else ""
        config = self.folder / "nginx.conf"
        config.write_text(
            CONFIG.format(folder=self.folder, user=user, servers=servers, port=self.port),
            encoding="utf-8",
        )
        self._process = subprocess.Popen(
            [
                binary,
                "-p",
                str(self.folder),
                "-c",
                str(config),
                "-e",
                str(self.folder / "error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self._process.poll() is not None:
                    errors = self._process.stderr.read() if self._process.stderr else b""
                    raise AssertionError(f"nginx exited: {errors.decode()}") from None
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None

    def access_log(self) -> str:
        return (self.folder / "access.log").read_text(encoding="utf-8")

    def _write_certificate(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        (self.folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (self.folder / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
