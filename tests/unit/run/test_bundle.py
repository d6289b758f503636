"""The pure parts of the bundle engine: role packages, apt output, stable index files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from nodekit.errors import InputError, OperationError, ToolchainError
from nodekit.run import apt_resolve, bundle
from nodekit.run.apt_resolve import ResolvedDeb
from nodekit.run.bundle import (
    APT_SOURCE_LINE,
    ROLES_DIR,
    gzip_stable,
    manifest_bytes,
    role_apt_packages,
    stable_index,
)

ALL_ROLES = ("base", "firewall", "mosquitto", "postgresql", "node_exporter", "prometheus")


def write_role(roles: Path, name: str, text: str) -> None:
    defaults = roles / name / "defaults"
    defaults.mkdir(parents=True)
    (defaults / "main.yml").write_text(text)


# --- role_apt_packages ---------------------------------------------------------


def test_role_packages_of_the_shipped_roles() -> None:
    assert role_apt_packages(ALL_ROLES) == [
        "acl",
        "chrony",
        "iproute2",
        "mosquitto",
        "mosquitto-clients",
        "netcat-openbsd",
        "nftables",
        "postgresql",
        "prometheus",
        "prometheus-node-exporter",
        "python3-apt",
        "python3-psycopg2",
    ]


def test_every_shipped_role_names_its_packages() -> None:
    installs_nothing = {"removal"}  # it only takes away what others installed
    for role in sorted(p.name for p in ROLES_DIR.iterdir() if p.is_dir()):
        assert bool(role_apt_packages([role])) != (role in installs_nothing), role


def test_role_packages_are_a_sorted_union(tmp_path: Path) -> None:
    write_role(tmp_path, "one", "one_apt_packages: [zeta, alpha]\nother: 1\n")
    write_role(tmp_path, "two", "two_apt_packages:\n  - alpha\n  - beta\n")
    write_role(tmp_path, "three", "three_port: 1\n")  # installs nothing
    assert role_apt_packages(["two", "one", "three"], tmp_path) == ["alpha", "beta", "zeta"]
    assert role_apt_packages([], tmp_path) == []


def test_unknown_role_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown role 'ghost'"):
        role_apt_packages(["ghost"], tmp_path)


@pytest.mark.parametrize(
    "text", ["bad_apt_packages: chrony\n", "bad_apt_packages: [1, 2]\n", "bad_apt_packages: [a\n"]
)
def test_malformed_role_packages_are_input_errors(tmp_path: Path, text: str) -> None:
    write_role(tmp_path, "bad", text)
    with pytest.raises(InputError, match="bad"):
        role_apt_packages(["bad"], tmp_path)


# --- package names and apt's answers ---------------------------------------------


def test_names_are_checked_sorted_and_deduplicated() -> None:
    assert apt_resolve.check_names(["nftables", "chrony", "nftables"]) == ("chrony", "nftables")
    with pytest.raises(InputError, match="'Bad Name'"):
        apt_resolve.check_names(["chrony", "Bad Name"])
    with pytest.raises(InputError, match="at least one"):
        apt_resolve.check_names([])
    with pytest.raises(InputError, match="not one string"):
        apt_resolve.check_names("chrony")


def test_simulated_install_lines_are_parsed() -> None:
    lines = [
        "Inst chrony (4.3-2+deb12u3 Debian:12.12/stable [amd64])",
        "Inst libc6 [2.36-9+deb12u1] (2.36-9+deb12u14 Debian-Security:12/stable-security [amd64])",
        "Inst libllvm14 (1:14.0.6-12 Debian:12.12/stable [amd64]) []",
        "Conf chrony (4.3-2+deb12u3 Debian:12.12/stable [amd64])",
    ]
    found = [ResolvedDeb(*m.groups()) for ln in lines if (m := apt_resolve.INST.match(ln))]
    assert [d.filename for d in found] == [
        "chrony_4.3-2+deb12u3_amd64.deb",
        "libc6_2.36-9+deb12u14_amd64.deb",
        "libllvm14_1%3a14.0.6-12_amd64.deb",  # apt's own name for an epoch
    ]


def test_unknown_packages_are_input_errors_naming_them() -> None:
    error = apt_resolve.classify_apt_failure(
        "Reading package lists...\nE: Unable to locate package nosuchpkg\n"
        "E: Unable to locate package otherpkg\n"
    )
    assert isinstance(error, InputError)
    assert "nosuchpkg" in str(error) and "otherpkg" in str(error)
    assert error.context["packages"] == ["nosuchpkg", "otherpkg"]
    virtual = apt_resolve.classify_apt_failure(
        "E: Package 'mail-transport' has no installation candidate"
    )
    assert isinstance(virtual, InputError) and "mail-transport" in str(virtual)


def test_other_apt_failures_are_operation_errors() -> None:
    broken = apt_resolve.classify_apt_failure(
        "The following packages have unmet dependencies:\n x : Depends: y\n"
        "E: Unable to correct problems, you have held broken packages.\n"
    )
    assert isinstance(broken, OperationError) and "dependencies" in str(broken)
    other = apt_resolve.classify_apt_failure("E: Failed to fetch http://mirror/x.deb  404\n")
    assert isinstance(other, OperationError) and "Failed to fetch" in str(other)


def test_missing_dpkg_scanpackages_names_make_setup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bundle.shutil, "which", lambda name: None)
    with pytest.raises(ToolchainError) as caught:
        bundle.build_bundle(["chrony"], tmp_path, baseline=tmp_path / "status")
    assert caught.value.part == "dpkg-dev"
    assert "make setup" in caught.value.fix


# --- byte-stable index files --------------------------------------------------


STANZA_B = b"Package: zlib\nVersion: 1\nFilename: ./zlib_1_amd64.deb\nDescription: z\n more\n"
STANZA_A = b"Package: acl\nVersion: 2\nFilename: ./acl_2_amd64.deb\n"


def test_index_is_sorted_whatever_the_scan_order() -> None:
    one = stable_index(STANZA_B + b"\n" + STANZA_A + b"\n")
    two = stable_index(STANZA_A + b"\n" + STANZA_B)
    assert one == two
    assert one.startswith(b"Package: acl\n")
    assert one.endswith(b" more\n\n")


def test_gzip_is_byte_stable() -> None:
    data = stable_index(STANZA_A + b"\n" + STANZA_B)
    first = gzip_stable(data)
    assert first == gzip_stable(data)
    assert gzip.decompress(first) == data
    assert first[4:8] == b"\0\0\0\0"  # no timestamp in the header


def test_manifest_is_sorted_and_stable() -> None:
    debs = {"b_1_all.deb": ("bb", 2), "a_1_all.deb": ("aa", 1)}
    one = manifest_bytes("sha256:img", ["zeta", "alpha"], debs)
    two = manifest_bytes("sha256:img", ["alpha", "zeta"], dict(reversed(debs.items())))
    assert one == two
    document = json.loads(one)
    assert document["requested"] == ["alpha", "zeta"]
    assert [p["file"] for p in document["packages"]] == ["a_1_all.deb", "b_1_all.deb"]
    assert (
        document["apt_source"] == APT_SOURCE_LINE == "deb [trusted=yes] file:/srv/nodekit/bundle ./"
    )


def test_a_bundle_is_reused_only_for_the_same_input(tmp_path: Path) -> None:
    (tmp_path / "a_1_all.deb").write_bytes(b"x")
    for name in ("Packages", "Packages.gz"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "nodekit-bundle.json").write_bytes(
        manifest_bytes("sha256:img", ["a"], {"a_1_all.deb": ("digest", 1)})
    )
    assert bundle._reusable(tmp_path, "sha256:img", ("a",)) == ("a_1_all.deb",)
    assert bundle._reusable(tmp_path, "sha256:other", ("a",)) is None
    assert bundle._reusable(tmp_path, "sha256:img", ("a", "b")) is None
    (tmp_path / "a_1_all.deb").write_bytes(b"truncated?")  # size differs from the manifest
    assert bundle._reusable(tmp_path, "sha256:img", ("a",)) is None


def test_a_node_of_the_same_packages_gets_its_bundle_from_a_sibling(tmp_path: Path) -> None:
    """Eight nodes of one shape: one apt run, the other bundles are linked copies;
    a sibling of other packages is not used, and a bundle missing a .deb is rebuilt."""
    first, second, other = tmp_path / "n1", tmp_path / "n2", tmp_path / "n3"
    for folder, requested in ((first, ["a"]), (other, ["a", "b"])):
        folder.mkdir()
        (folder / "a_1_all.deb").write_bytes(b"x")
        for name in ("Packages", "Packages.gz"):
            (folder / name).write_bytes(b"index of " + folder.name.encode())
        (folder / "nodekit-bundle.json").write_bytes(
            manifest_bytes("sha256:img", requested, {"a_1_all.deb": ("digest", 1)})
        )
    assert bundle._clone_sibling(second, "sha256:img", ("a",)) == ("a_1_all.deb",)
    assert bundle._reusable(second, "sha256:img", ("a",)) == ("a_1_all.deb",)
    assert (second / "Packages").read_bytes() == b"index of n1"
    assert (second / "a_1_all.deb").stat().st_ino == (first / "a_1_all.deb").stat().st_ino
    assert bundle._clone_sibling(tmp_path / "n4", "sha256:img", ("b",)) is None
    (first / "a_1_all.deb").unlink()  # a bundle missing a package is not reused
    assert bundle._reusable(first, "sha256:img", ("a",)) is None
