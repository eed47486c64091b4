"""A test PKI of the tests' own making (the ``cryptography`` package): a root CA, a server certificate for
127.0.0.1/localhost, TradingView's client certificate and look-alikes that must be refused."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TV_SUBJECT = [  # as TradingView's own certificate names it, most significant first
    (NameOID.COUNTRY_NAME, "US"),
    (NameOID.STATE_OR_PROVINCE_NAME, "Ohio"),
    (NameOID.LOCALITY_NAME, "Westerville"),
    (NameOID.ORGANIZATION_NAME, "TradingView, Inc."),
    (NameOID.COMMON_NAME, "TradingView Webhooks"),
]
TV_EMAIL = "webhook-server@tradingview.com"


def name(attributes: list[tuple[x509.ObjectIdentifier, str]]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path

    @property
    def requests_cert(self) -> tuple[str, str]:
        return str(self.cert), str(self.key)


@dataclass(frozen=True)
class Pki:
    ca: Path  # the root CA certificate (TV_CLIENT_CA_FILE, and what clients trust for the server)
    server: Pair
    tradingview: Pair  # issued by the CA, TradingView's subject and SAN
    tradingview_minimal: Pair  # only CN and O
    self_signed_tradingview: Pair  # the same subject, signed by itself
    wrong_organisation: Pair  # CN=TradingView Webhooks, O=Someone Else (by the CA)
    wrong_common_name: Pair  # CN=Somebody, O=TradingView, Inc. (by the CA)
    smuggled: Pair  # O=TradingView, Inc. only inside another attribute's value (by the CA)
    expired_tradingview: Pair  # TradingView's subject by the CA, expired


class _Issuer:
    def __init__(self, key: ec.EllipticCurvePrivateKey, subject: x509.Name) -> None:
        self.key = key
        self.subject = subject


def _write(directory: Path, label: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
    cert_path, key_path = directory / f"{label}.crt", directory / f"{label}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Pair(cert_path, key_path)


def _certificate(
    subject: x509.Name,
    issuer: _Issuer | None,
    key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    san: list[x509.GeneralName] | None = None,
    usage: x509.ObjectIdentifier | None = None,
    expired: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if expired else (
        now - dt.timedelta(hours=1), now + dt.timedelta(days=30)
    )  # fmt: skip
    signer = issuer or _Issuer(key, subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signer.key, hashes.SHA256())


def make_test_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name([(NameOID.ORGANIZATION_NAME, "BluefinAI Test CA"), (NameOID.COMMON_NAME, "Test Root")])
    ca_cert = _certificate(ca_name, None, ca_key, ca=True)
    ca = _Issuer(ca_key, ca_name)
    _write(directory, "ca", ca_cert, ca_key)

    def issue(label: str, subject: x509.Name, issuer: _Issuer | None = ca, **kwargs: object) -> Pair:
        key = ec.generate_private_key(ec.SECP256R1())
        return _write(directory, label, _certificate(subject, issuer, key, **kwargs), key)  # type: ignore[arg-type]

    client = ExtendedKeyUsageOID.CLIENT_AUTH
    tv_san = [x509.RFC822Name(TV_EMAIL)]
    tv = name(TV_SUBJECT)
    return Pki(
        ca=directory / "ca.crt",
        server=issue(
            "server",
            name([(NameOID.COMMON_NAME, "localhost")]),
            san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
        ),
        tradingview=issue("tradingview", tv, san=tv_san, usage=client),
        tradingview_minimal=issue(
            "tradingview-minimal",
            name(
                [
                    (NameOID.ORGANIZATION_NAME, "TradingView, Inc."),
                    (NameOID.COMMON_NAME, "TradingView Webhooks"),
                ]
            ),
            san=tv_san,
            usage=client,
        ),
        self_signed_tradingview=issue("self-signed", tv, None, san=tv_san, usage=client),
        wrong_organisation=issue(
            "wrong-o",
            name(
                [(NameOID.ORGANIZATION_NAME, "Someone Else"), (NameOID.COMMON_NAME, "TradingView Webhooks")]
            ),
            usage=client,
        ),
        wrong_common_name=issue(
            "wrong-cn",
            name([(NameOID.ORGANIZATION_NAME, "TradingView, Inc."), (NameOID.COMMON_NAME, "Somebody")]),
            usage=client,
        ),
        smuggled=issue(
            "smuggled",
            name(
                [
                    (NameOID.ORGANIZATION_NAME, "Someone Else"),
                    (NameOID.ORGANIZATIONAL_UNIT_NAME, "x,O=TradingView, Inc."),
                    (NameOID.COMMON_NAME, "TradingView Webhooks"),
                ]
            ),
            usage=client,
        ),
        expired_tradingview=issue("expired", tv, san=tv_san, usage=client, expired=True),
    )
