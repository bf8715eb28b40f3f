"""A private CA is trusted through the settings (``aws.caBundle``, ``dracoon.caFile``), with
the certificate still checked: a server it signed is reached, and without the setting the
same server is refused."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from recstore.clients.aws import aws_client
from recstore.clients.http import http_session
from recstore.clients.s3 import S3Store
from recstore.config import AwsSettings
from recstore.errors import RemoteError
from tests.archive_helpers import FAST


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def throwaway_ca(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA's PEM file, and a server context for 127.0.0.1 with a certificate it signed."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("recstore test CA"))
        .issuer_name(_name("recstore test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


async def answer(request: web.Request) -> web.Response:
    """A HEAD of an S3 object, or any other GET: five bytes."""
    return web.Response(body=b"hello", headers={"ETag": '"5d41402abc4b2a76b9719d911017c592"'})


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    ca_file, context = throwaway_ca(tmp_path)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"https://127.0.0.1:{port}", ca_file
    finally:
        await runner.cleanup()


def s3_settings(url: str, ca_bundle: Path | None) -> AwsSettings:
    return AwsSettings.model_validate(
        {
            "region": "us-east-1",
            "s3EndpointUrl": url,
            "accessKeyId": "k",
            "secretAccessKey": SecretStr("s"),
            "caBundle": ca_bundle,
        }
    )


async def test_s3_over_https_trusts_the_ca_bundle_of_its_settings(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = tls_server
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    async with aws_client(s3_settings(url, ca_file), "s3") as client:
        info = await S3Store(client, FAST).head("bucket", "key")
    assert info.size == 5
    async with aws_client(s3_settings(url, None), "s3") as client:
        with pytest.raises(RemoteError):
            await S3Store(client, FAST).head("bucket", "key")


async def test_dracoon_sessions_trust_the_ca_file_of_their_settings(
    tls_server: tuple[str, Path],
) -> None:
    url, ca_file = tls_server
    async with http_session(10, ca_file=ca_file) as http, http.get(url + "/x") as got:
        assert await got.read() == b"hello"
    async with http_session(10) as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(url + "/x")
