"""Shared by the authentication tests: a CA and a server certificate for 127.0.0.1/localhost,
an alula-server started with auth settings (and a TOML file for what has no environment
variable), machine clients made with `alula-server auth create-client`, flytekit configs for
each authType, and the environment flytekit runs in.

Import it from tests/e2e (`from auth_support import ...`); the test OpenID Connect provider is
`tests/oidc_provider` (`PROVIDER_DIR` is put on `sys.path` here, so `import oidc_provider`
works after importing this module)."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from conftest import (
    AlulaServer,
    RunningServer,
    _free_port,
    _wait_for_port,
)
from conftest import server_binary as _build_server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TESTS_DIR = Path(__file__).resolve().parents[1]
PROVIDER_DIR = TESTS_DIR
if str(PROVIDER_DIR) not in sys.path:
    sys.path.insert(0, str(PROVIDER_DIR))

PYFLYTE = Path(sys.executable).parent / "pyflyte"


@functools.cache
def server_binary() -> Path:
    """alula-server, built once per test session: the server and `alula-server auth ...` must
    be the same build (a rebuild between them would also wait on cargo's lock)."""
    return _build_server()


# -- TLS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    """PEM files: the CA clients trust, and the server's certificate (chain) and key."""

    ca_cert: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tls(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Tls:
    """A fresh CA and a server certificate it signed for `hosts` (IP addresses and DNS names),
    written under `directory` (the key mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Alula test CA"))
        .issuer_name(_name("Alula test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    tls.key.touch(mode=0o600)
    tls.key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


# -- the server --------------------------------------------------------------------------------


@dataclass
class AuthServer(RunningServer):
    """A running alula-server with its settings: `args` (e.g. `--config FILE`) are passed on
    restart too; `tls` when it serves TLS."""

    args: list[str] = field(default_factory=list)
    tls: Tls | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def http_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    def restart(self) -> None:
        with self.server.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [server_binary(), *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_for_port(self.server.grpc_port, self.proc, self.server.log_file)

    def log(self) -> str:
        return self.server.log_file.read_text(errors="replace")


def start_auth_server(
    work: Path,
    *,
    propeller: bool = True,
    env: dict[str, str] | None = None,
    toml: str | None = None,
    tls: Tls | None = None,
) -> AuthServer:
    """alula-server on free ports with a fresh database under `work`: `env` adds settings
    (`ALULA_AUTH`, ...), `toml` is written to `work/server.toml` and passed with `--config`
    (for what has no variable: `[[auth.bindings]]`, `redirect_uri`, ...), `tls` turns TLS on
    (`ALULA_TLS_CERT`/`ALULA_TLS_KEY`, and the public URL becomes https)."""
    work.mkdir(parents=True, exist_ok=True)
    binary = server_binary()
    server = AlulaServer(
        grpc_port=_free_port(),
        http_port=_free_port(),
        storage_root=work / "storage",
        config_file=work / "flytekit-plain.yaml",
        log_file=work / "server.log",
    )
    scheme = "https" if tls else "http"
    server_env = {
        **os.environ,
        "ALULA_GRPC_PORT": str(server.grpc_port),
        "ALULA_HTTP_PORT": str(server.http_port),
        "ALULA_STORAGE_ROOT": str(server.storage_root),
        "ALULA_DATABASE_URL": f"sqlite://{work / 'alula.db'}?mode=rwc",
        "ALULA_PROPELLER": "1" if propeller else "0",
        "ALULA_TASK_PATH": str(Path(sys.executable).parent),
        "ALULA_PUBLIC_HTTP_URL": f"{scheme}://127.0.0.1:{server.http_port}",
        "RUST_LOG": os.environ.get("RUST_LOG", "info"),
    }
    if tls:
        server_env["ALULA_TLS_CERT"] = str(tls.cert)
        server_env["ALULA_TLS_KEY"] = str(tls.key)
    server_env.update(env or {})
    args: list[str] = []
    if toml is not None:
        toml_file = work / "server.toml"
        toml_file.write_text(toml)
        args = ["--config", str(toml_file)]
    # A config without credentials, for the tests of what happens without them.
    write_flytekit_config(server.config_file, endpoint=f"127.0.0.1:{server.grpc_port}", tls=tls)
    with server.log_file.open("wb") as log:
        proc = subprocess.Popen(
            [binary, *args], env=server_env, stdout=log, stderr=subprocess.STDOUT
        )
    running = AuthServer(server, proc, server_env, args=args, tls=tls)
    try:
        _wait_for_port(server.grpc_port, proc, server.log_file)
    except Exception:
        proc.kill()
        raise
    return running


def server_cli(server: AuthServer, *args: str) -> subprocess.CompletedProcess[str]:
    """`alula-server ARGS` (e.g. `auth create-client ...`) on the server's database: the same
    environment and settings file the server runs with."""
    return subprocess.run(
        [str(server_binary()), *args, *server.args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass(frozen=True)
class MachineClient:
    client_id: str
    client_secret: str = field(repr=False)
    # The secret in a file (mode 0600), for flytekit's clientSecretLocation.
    secret_file: Path = field(repr=False, default=Path())


def create_client(
    server: AuthServer,
    name: str,
    role: str,
    *,
    project: str | None = None,
    domain: str | None = None,
    secret_dir: Path | None = None,
) -> MachineClient:
    """`alula-server auth create-client NAME --role ROLE [--project P] [--domain D]`; parses the
    `client_id: ...` / `client_secret: ...` it prints once, and writes the secret to a file."""
    args = ["auth", "create-client", name, "--role", role]
    if project:
        args += ["--project", project]
    if domain:
        args += ["--domain", domain]
    done = server_cli(server, *args)
    # Not the output itself in the message: it holds the secret.
    assert done.returncode == 0, f"create-client {name} failed: {done.stderr}"
    client_id = re.search(r"^\s*client_id:\s*(\S+)\s*$", done.stdout, re.M)
    secret = re.search(r"^\s*client_secret:\s*(\S+)\s*$", done.stdout, re.M)
    assert client_id and secret, "create-client printed no client_id / client_secret lines"
    directory = secret_dir or server.server.storage_root.parent / "secrets"
    directory.mkdir(parents=True, exist_ok=True)
    secret_file = directory / f"{client_id.group(1)}.secret"
    secret_file.touch(mode=0o600)
    secret_file.write_text(secret.group(1))
    return MachineClient(client_id.group(1), secret.group(1), secret_file)


# -- flytekit ----------------------------------------------------------------------------------


def write_flytekit_config(
    path: Path,
    *,
    endpoint: str,
    tls: Tls | None = None,
    auth_type: str | None = None,
    client: MachineClient | None = None,
    command: list[str] | None = None,
    scopes: list[str] | None = None,
) -> Path:
    """A flytekit config (`admin:` section) for `endpoint`: `insecure: false` and
    `caCertFilePath` with `tls`; `authType` (ClientSecret with `client`'s id and
    clientSecretLocation; ExternalCommand with `command`; Pkce; DeviceFlow) when given."""
    lines = ["admin:", f"  endpoint: dns:///{endpoint}"]
    if tls:
        lines += ["  insecure: false", f"  caCertFilePath: {tls.ca_cert}"]
    else:
        lines.append("  insecure: true")
    if auth_type:
        lines.append(f"  authType: {auth_type}")
    if client:
        lines += [
            f"  clientId: {client.client_id}",
            f"  clientSecretLocation: {client.secret_file}",
        ]
    if command:
        lines.append("  command:")
        lines += [f"    - {_yaml_string(part)}" for part in command]
    if scopes:
        lines.append("  scopes:")
        lines += [f"    - {_yaml_string(scope)}" for scope in scopes]
    path.write_text("\n".join(lines) + "\n")
    return path


def _yaml_string(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def flytekit_env(**extra: str) -> dict[str, str]:
    """The environment pyflyte runs in: no keyring (tokens are not cached between runs, so
    each run does its flow), no FLYTE_* settings of the machine, no real browser."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYTE", "BROWSER"))}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def pyflyte(
    config: Path, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """`pyflyte --config CONFIG ARGS` in `cwd`."""
    return subprocess.run(
        [str(PYFLYTE), "--config", str(config), *args],
        cwd=cwd,
        env=env or flytekit_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
