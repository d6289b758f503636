"""The fleet's certificates: the CA, a node's certificate, the CA kept once in the
fleet scope, and a node's tls/ secrets made once (the CA's key never on a node)."""

from __future__ import annotations

import datetime
import ipaddress
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nodekit.backends.local import LocalBackend
from nodekit.blueprint import load
from nodekit.render import PROJECT_ROOT
from nodekit.render.plan import NodePlan, plan
from nodekit.run.fleet_tls import blocks, fleet_ca, issue, new_ca, tls_maker
from nodekit.run.state import NodeState

LYON = PROJECT_ROOT / "blueprints" / "sites" / "lyon-additive-01.yaml"
HUB = PROJECT_ROOT / "blueprints" / "hubs" / "eu-west-hub.yaml"


def _cert(bundle: str) -> x509.Certificate:
    found = blocks(bundle, "CERTIFICATE")
    assert len(found) == 1, bundle
    return x509.load_pem_x509_certificate(found[0].encode())


def _key(bundle: str) -> ec.EllipticCurvePrivateKey:
    found = blocks(bundle, "PRIVATE KEY")
    assert len(found) == 1
    key = serialization.load_pem_private_key(found[0].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _public(key: ec.EllipticCurvePublicKey | object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@pytest.fixture(scope="module")
def ca() -> str:
    return new_ca()


# --- the CA and a node's certificate -------------------------------------------------


def test_blocks_picks_the_blocks_of_one_kind() -> None:
    bundle = new_ca()
    assert len(blocks(bundle, "PRIVATE KEY")) == 1
    assert len(blocks(bundle, "CERTIFICATE")) == 1
    assert blocks(bundle, "CERTIFICATE")[0].startswith("-----BEGIN CERTIFICATE-----")
    assert blocks(bundle, "CERTIFICATE")[0].rstrip().endswith("-----END CERTIFICATE-----")
    assert blocks(bundle, "RSA PRIVATE KEY") == []
    assert blocks("", "CERTIFICATE") == []


def test_a_new_ca_is_a_self_signed_ca(ca: str) -> None:
    cert = _cert(ca)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is True
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)  # self-signed
    assert _public(cert.public_key()) == _public(_key(ca).public_key())


def test_two_new_cas_differ() -> None:
    assert _public(_cert(new_ca()).public_key()) != _public(_cert(new_ca()).public_key())


def test_an_issued_certificate_is_signed_by_the_ca(ca: str) -> None:
    bundle = issue(ca, "lyon-additive-01", [])
    cert = _cert(bundle)
    cert.verify_directly_issued_by(_cert(ca))
    assert cert.issuer == _cert(ca).subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_a_certificate_of_another_ca_does_not_verify(ca: str) -> None:
    # Every fleet CA has the same name: the signature is what tells them apart.
    other = issue(new_ca(), "lyon-additive-01", [])
    assert _cert(other).issuer == _cert(ca).subject
    with pytest.raises(InvalidSignature):
        _cert(other).verify_directly_issued_by(_cert(ca))


def test_an_issued_certificate_names_the_node_and_its_addresses(ca: str) -> None:
    cert = _cert(issue(ca, "eu-west-hub", ["100.64.0.2", "hub.example.internal"]))
    assert _common_name(cert) == "eu-west-hub"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["eu-west-hub", "hub.example.internal"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("100.64.0.2")]


def test_the_common_name_is_a_san_once(ca: str) -> None:
    cert = _cert(issue(ca, "eu-west-hub", ["eu-west-hub"]))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["eu-west-hub"]
    assert san.get_values_for_type(x509.IPAddress) == []


def test_an_issued_certificate_serves_and_connects(ca: str) -> None:
    cert = _cert(issue(ca, "lyon-additive-01", []))
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_the_issued_key_matches_its_certificate_and_is_not_the_cas(ca: str) -> None:
    bundle = issue(ca, "lyon-additive-01", [])
    key = _public(_key(bundle).public_key())
    assert key == _public(_cert(bundle).public_key())
    assert key != _public(_key(ca).public_key())


def test_issued_certificates_are_valid_now_and_for_a_while(ca: str) -> None:
    cert = _cert(issue(ca, "n1", []))
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - now > datetime.timedelta(days=365)
    assert cert.not_valid_after_utc <= _cert(ca).not_valid_after_utc


# --- the fleet CA in the backend -----------------------------------------------------


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "state"
    monkeypatch.setenv("NODEKIT_STATE", str(root))
    return root


def test_fleet_ca_is_made_once_and_kept_in_the_fleet_scope(state_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    first = fleet_ca(LocalBackend(), run_dir)
    second = fleet_ca(LocalBackend(), run_dir)
    assert first == second
    assert _cert(first).extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    _key(first)  # the runner has the key to sign with
    path = state_dir / "nodes" / ".fleet" / "secrets.yml"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text())["nodekit_secrets"]["fleet/ca"] == first
    assert list(run_dir.iterdir()) == []  # the local backend leaves no copy in the run


def test_fleet_ca_is_not_any_nodes_secret(state_dir: Path, tmp_path: Path) -> None:
    fleet_ca(LocalBackend(), tmp_path)
    nodes = sorted(p.name for p in (state_dir / "nodes").iterdir())
    assert nodes == [".fleet"]


# --- a node's tls/ secrets -----------------------------------------------------------


@pytest.fixture(scope="module")
def lyon() -> NodePlan:
    return plan(load(LYON).data)


def test_no_maker_for_a_node_whose_broker_does_not_bridge(tmp_path: Path) -> None:
    data = load(LYON).data
    for item in data["software"]:
        if item["package"] == "mosquitto":
            item["settings"].pop("bridge_topics", None)
    node = plan(data)
    assert not [name for name in node.secrets if name.startswith("tls/")]
    assert tls_maker(LocalBackend(), node, tmp_path) is None


def test_lyon_needs_the_ca_and_its_brokers_certificate(lyon: NodePlan) -> None:
    assert {"tls/fleet-ca", "tls/broker"} <= set(lyon.secrets)


def test_the_makers_ca_secret_is_the_ca_certificate_only(
    state_dir: Path, tmp_path: Path, lyon: NodePlan
) -> None:
    make = tls_maker(LocalBackend(), lyon, tmp_path)
    assert make is not None
    value = make("tls/fleet-ca")
    assert value is not None
    assert blocks(value, "PRIVATE KEY") == []  # the CA's key never reaches a node
    assert "PRIVATE KEY" not in value
    assert value == blocks(fleet_ca(LocalBackend(), tmp_path), "CERTIFICATE")[0]


def test_the_makers_broker_secret_is_a_key_and_a_certificate_of_the_fleet_ca(
    state_dir: Path, tmp_path: Path, lyon: NodePlan
) -> None:
    make = tls_maker(LocalBackend(), lyon, tmp_path)
    assert make is not None
    bundle = make("tls/broker")
    assert bundle is not None
    cert = _cert(bundle)
    ca_cert = _cert(fleet_ca(LocalBackend(), tmp_path))
    cert.verify_directly_issued_by(ca_cert)
    assert _common_name(cert) == "lyon-additive-01"
    assert _public(_key(bundle).public_key()) == _public(cert.public_key())
    assert _public(_key(bundle).public_key()) != _public(ca_cert.public_key())


def test_the_maker_leaves_other_secrets_to_the_default(
    state_dir: Path, tmp_path: Path, lyon: NodePlan
) -> None:
    make = tls_maker(LocalBackend(), lyon, tmp_path)
    assert make is not None
    assert make("broker/edge") is None


def test_a_hubs_certificate_names_its_wan_address_when_it_has_one(
    state_dir: Path, tmp_path: Path
) -> None:
    data = load(HUB).data
    data["network"]["uplink"]["address"] = "100.64.0.2"
    node = plan(data)
    make = tls_maker(LocalBackend(), node, tmp_path)
    assert make is not None
    bundle = make("tls/broker")
    assert bundle is not None
    san = _cert(bundle).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["eu-west-hub"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("100.64.0.2")]


def test_node_secrets_are_made_once_and_kept(
    state_dir: Path, tmp_path: Path, lyon: NodePlan
) -> None:
    backend = LocalBackend()
    state = NodeState.of(lyon.name)
    names = tuple(lyon.secrets)
    path = backend.secrets_file(state, names, tmp_path, tls_maker(backend, lyon, tmp_path))
    first = yaml.safe_load(path.read_text())["nodekit_secrets"]
    assert set(first) == set(names)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path == state_dir / "nodes" / "lyon-additive-01" / "secrets.yml"
    # the CA's certificate only; the broker's own key and certificate, of the fleet CA
    assert blocks(first["tls/fleet-ca"], "PRIVATE KEY") == []
    ca_cert = _cert(first["tls/fleet-ca"])
    _cert(first["tls/broker"]).verify_directly_issued_by(ca_cert)
    assert len(blocks(first["tls/broker"], "PRIVATE KEY")) == 1
    # the fleet's CA key is nowhere in the node's secrets
    ca_key = blocks(fleet_ca(backend, tmp_path), "PRIVATE KEY")[0]
    assert ca_key not in path.read_text()
    # a second deploy keeps every value (certificates are not reissued)
    again = backend.secrets_file(state, names, tmp_path, tls_maker(backend, lyon, tmp_path))
    assert yaml.safe_load(again.read_text())["nodekit_secrets"] == first


def test_a_second_node_gets_the_same_ca(state_dir: Path, tmp_path: Path, lyon: NodePlan) -> None:
    backend = LocalBackend()
    made = {}
    for name in ("lyon-a", "lyon-b"):
        data = load(LYON).data
        data["metadata"]["name"] = name
        node = plan(data)
        path = backend.secrets_file(
            NodeState.of(name), tuple(node.secrets), tmp_path, tls_maker(backend, node, tmp_path)
        )
        made[name] = yaml.safe_load(path.read_text())["nodekit_secrets"]
    assert made["lyon-a"]["tls/fleet-ca"] == made["lyon-b"]["tls/fleet-ca"]
    assert made["lyon-a"]["tls/broker"] != made["lyon-b"]["tls/broker"]
    assert _common_name(_cert(made["lyon-b"]["tls/broker"])) == "lyon-b"
