"""The fleet's certificates: one fleet CA, and a certificate per node's broker.

Site brokers bridge to their hub over TLS (8883); both ends prove who they
are with a certificate the fleet CA signed, whose common name is the node's
name (the hub uses it as the MQTT user name: a site may publish only under
``nodekit/<its node>/``).

The CA is a fleet-scope secret (``fleet/ca``, DECISIONS): kept outside any
node, in the state folder's ``nodes/.fleet/`` (0600) or, with a shared backend, in
its reserved scope ``.fleet``, sealed like every secret; a node's destroy
never removes it. A node's own certificate and the CA's certificate are node
secrets (``tls/<software>``, ``tls/fleet-ca``), made once on first deploy.
The CA's key never leaves the runner.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nodekit.backends.base import Backend
from nodekit.render.plan import NodePlan
from nodekit.run.lock import holder_info
from nodekit.run.state import MakeSecret, NodeState

FLEET = ".fleet"  # never a node name (node names are DNS labels)
CA_SECRET = "fleet/ca"
CA_CERT = "tls/fleet-ca"  # the CA's certificate, as a node secret (no key)
TLS_PREFIX = "tls/"
CA_YEARS = 10
CERT_DAYS = 825

_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\n?", re.S)


def fleet_state() -> NodeState:
    """The fleet scope's folder: beside the nodes' (``backend migrate`` carries it)."""
    return NodeState.of(FLEET)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def blocks(bundle: str, kind: str) -> list[str]:
    """The PEM blocks of one kind (``CERTIFICATE``, ``PRIVATE KEY``) in a bundle."""
    return [m.group(0) for m in _PEM.finditer(bundle) if m.group(1) == kind]


_CA_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True,
    crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip
_EKU = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])


def new_ca(name: str = "nodekit fleet CA") -> str:
    """A new CA: its key and self-signed certificate, PEM, in one bundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .sign(key, hashes.SHA256())
    )
    return _pem_key(key) + cert.public_bytes(serialization.Encoding.PEM).decode()


def issue(ca_bundle: str, common_name: str, names: list[str]) -> str:
    """A key and a certificate for ``common_name`` (server and client use), signed
    by the CA; ``names`` become subject alternative names (DNS names or IPs)."""
    ca_key = serialization.load_pem_private_key(blocks(ca_bundle, "PRIVATE KEY")[0].encode(), None)
    ca_cert = x509.load_pem_x509_certificate(blocks(ca_bundle, "CERTIFICATE")[0].encode())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in dict.fromkeys([common_name, *names]):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(_EKU, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _pem_key(key) + cert.public_bytes(serialization.Encoding.PEM).decode()


def fleet_ca(backend: Backend, run_dir: Path) -> str:
    """The fleet CA (key and certificate), made on first use, the same for every
    runner of the backend."""
    state = fleet_state()
    with backend.lock(FLEET, holder=holder_info("nodekit fleet CA"), timeout_s=120):
        path = backend.secrets_file(state, (CA_SECRET,), run_dir, lambda _: new_ca())
        try:
            values = yaml.safe_load(path.read_text())["nodekit_secrets"]
        finally:
            if path.parent == run_dir:
                path.unlink()  # a shared backend's copy: only the value is wanted
    return str(values[CA_SECRET])


def tls_maker(backend: Backend, node: NodePlan, run_dir: Path) -> MakeSecret:
    """Makes a node's new ``tls/`` secrets (None when it has none): the CA's
    certificate, and for each broker a certificate named after the node."""
    if not any(name.startswith(TLS_PREFIX) for name in node.secrets):
        return None
    cache: dict[str, str] = {}

    def ca() -> str:
        if "ca" not in cache:
            cache["ca"] = fleet_ca(backend, run_dir)
        return cache["ca"]

    def make(name: str) -> str | None:
        if name == CA_CERT:
            return blocks(ca(), "CERTIFICATE")[0]
        if name.startswith(TLS_PREFIX):
            own = [str(node.uplink["address"])] if node.uplink.get("address") else []
            return issue(ca(), node.name, own)
        return None

    return make
