"""Fixtures of the transport tests: real servers on loopback, TLS material, transports.

* `grpclib_server`, `grpcio_server`: one plain-TCP test server each per module (cheap to
  share: `peer` resets what they recorded before every test).
* `peer`: the test, once per server.
* `tls_ca`: a trustme CA with a certificate for 127.0.0.1 and localhost, plus a second,
  unrelated CA, as files.
* `tls_peer`: a TLS server trusting nothing but `tls_ca`, once per server kind.
* `transport_factory`: builds a transport from a URL, once per transport kind; grpclib
  runs on asyncio only, so its trio cases are skipped.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
import trustme

import transports
from transports import Transport

from .peers import Peer, grpcio_peer, grpclib_peer

TransportFactory = Callable[..., Transport]
"""`factory(url, **options)`: a new transport for `url`, e.g. `GrpclibTransport.from_url`."""


@attrs.frozen
class TlsFiles:
    """TLS material for one test: a CA, a server certificate it signed, and a stranger.

    Attributes:
        ca: The CA that signed the server certificate.
        ca_path: `ca`'s certificate as a PEM file.
        wrong_ca_path: The certificate of an unrelated CA, as a PEM file.
        key_pem: The server's private key, PEM.
        chain_pem: The server's certificate chain, PEM.
    """

    ca: trustme.CA
    ca_path: Path
    wrong_ca_path: Path
    key_pem: bytes
    chain_pem: bytes
    _server_cert: trustme.LeafCert

    def server_context(self) -> ssl.SSLContext:
        """Return a server TLS context with the certificate, offering ALPN `h2`."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_cert.configure_cert(context)
        context.set_alpn_protocols(["h2"])
        return context


@pytest.fixture(scope="module")
def grpclib_server() -> Iterator[Peer]:
    """A plain-TCP grpclib test server, shared by the module's tests."""
    with grpclib_peer() as peer:
        yield peer


@pytest.fixture(scope="module")
def grpcio_server() -> Iterator[Peer]:
    """A plain-TCP grpcio test server, shared by the module's tests."""
    with grpcio_peer() as peer:
        yield peer


@pytest.fixture(params=["grpclib", "grpcio"], ids=["grpclib-server", "grpcio-server"])
def peer(request: pytest.FixtureRequest) -> Peer:
    """Each plain-TCP test server in turn, with what earlier tests recorded forgotten."""
    server: Peer = request.getfixturevalue(f"{request.param}_server")
    server.reset()
    return server


@pytest.fixture
def tls_ca(tmp_path: Path) -> TlsFiles:
    """A CA, a server certificate for 127.0.0.1 and localhost, and an unrelated CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    wrong_ca_path = tmp_path / "wrong-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong_ca_path))
    chain_pem = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    return TlsFiles(ca, ca_path, wrong_ca_path, cert.private_key_pem.bytes(), chain_pem, cert)


@pytest.fixture(params=["grpclib", "grpcio"], ids=["grpclib-server", "grpcio-server"])
def tls_peer(request: pytest.FixtureRequest, tls_ca: TlsFiles) -> Iterator[Peer]:
    """Each kind of test server in turn, speaking TLS with `tls_ca`'s certificate."""
    if request.param == "grpclib":
        with grpclib_peer(tls=tls_ca.server_context(), root_certificates=tls_ca.ca_path) as peer:
            yield peer
    else:
        tls = (tls_ca.key_pem, tls_ca.chain_pem)
        with grpcio_peer(tls=tls, root_certificates=tls_ca.ca_path) as peer:
            yield peer


@pytest.fixture(params=["grpclib", "h2", "h2-anyio"])
def transport_kind(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """The name of each transport kind that runs on the test's backend.

    "h2-anyio" is H2Transport forced onto its anyio driver (which "h2" runs off
    asyncio anyway), so that both of its drivers are tested on asyncio.
    """
    kind = str(request.param)
    if kind == "grpclib" and anyio_backend != "asyncio":
        pytest.skip("GrpclibTransport runs on asyncio only")
    if kind == "h2-anyio" and anyio_backend != "asyncio":
        pytest.skip("off asyncio, H2Transport's anyio driver is what 'h2' runs")
    return kind


@pytest.fixture
def transport_factory(transport_kind: str) -> TransportFactory:
    """A `from_url(url, **options)` of each transport kind that runs on the test's backend."""
    if transport_kind == "grpclib":
        return transports.GrpclibTransport.from_url
    if transport_kind == "h2-anyio":
        return functools.partial(transports.H2Transport.from_url, _driver="anyio")
    return transports.H2Transport.from_url


DRIVERS = ("auto", "anyio")
"""H2Transport's drivers: "auto" picks the running library's; "anyio" forces the anyio one."""


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Each H2Transport driver that runs on the test's backend."""
    name = str(request.param)
    if name == "anyio" and anyio_backend != "asyncio":
        pytest.skip("off asyncio the anyio driver is the only one")
    return name
