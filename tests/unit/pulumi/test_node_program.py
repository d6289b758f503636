"""The component library under Pulumi's mocks.

No cloud is reachable here, so the AWS resources of a `cloud:` section are
tested with Pulumi's mocks (`pulumi.runtime.set_mocks`): the program runs for
real, every resource registration is recorded instead of sent to a provider.
The local target's resources are exercised for real by the integration tests.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pulumi
import pytest

from nodekit.render.plan import plan

BASE: dict[str, Any] = {
    "apiVersion": "nodekit/v1",
    "kind": "Node",
    "metadata": {"name": "austin-additive-01"},
    "site": {"region": "us-east", "timezone": "America/Chicago", "target": "local"},
    "network": {
        "domain": "austin.example.internal",
        "zones": [
            {"name": "ot", "cidr": "10.43.1.0/24"},
            {"name": "it", "cidr": "10.43.2.0/24"},
        ],
        "flows": [{"from": "ot", "to": "it", "ports": ["1883/tcp"]}],
    },
    "compute": [
        {
            "name": "gw-01",
            "role": "gateway",
            "zone": "ot",
            "address": "10.43.1.1",
            "interfaces": [{"zone": "it", "address": "10.43.2.1"}],
        },
        {
            "name": "edge-01",
            "role": "edge",
            "zone": "ot",
            "address": "10.43.1.10",
            "resources": {"cpus": 1, "memory_mb": 512},
        },
        {"name": "hist-01", "role": "controller", "zone": "it", "address": "10.43.2.10"},
    ],
    "software": [],
    "cloud": {
        "provider": "aws",
        "region": "us-east-1",
        "archive": {"bucket_prefix": "austin-telemetry", "retention_days": 90},
        "iot": {"enabled": True},
        "dns": {"zone": "example.internal", "vpc_id": "vpc-0a1b2c3d4e5f67890"},
    },
}


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        outputs = dict(args.inputs)
        if args.typ == "aws:iot/thing:Thing":
            outputs["arn"] = f"arn:aws:iot:us-east-1:123456789012:thing/{args.inputs['name']}"
        if args.typ == "aws:route53/zone:Zone":
            outputs["zoneId"] = "Z123"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]


def run_program(data: dict[str, Any]) -> Recorder:
    from nodekit.pulumi.node import program

    recorder = Recorder()
    # Pulumi's mocks need a current event loop; an earlier test's asyncio.run()
    # (the equipment agents' tests) leaves none behind.
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(recorder, project="nodekit-test", stack="test", preview=False)
    pulumi.runtime.set_all_config({"nodekit:image": "nodekit/node:test"})

    @pulumi.runtime.test
    def go() -> pulumi.Output[None]:
        program(copy.deepcopy(data))
        return pulumi.Output.from_input(None)

    go()
    return recorder


@pytest.fixture(scope="module")
def recorded() -> Recorder:
    return run_program(BASE)


def test_archive_bucket_is_encrypted_versioned_private_with_retention(recorded: Recorder) -> None:
    (bucket,) = recorded.of_type("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == "austin-telemetry-austin-additive-01"
    (versioning,) = recorded.of_type("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    (encryption,) = recorded.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    rule = encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert rule["sseAlgorithm"] == "aws:kms"
    (private,) = recorded.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert private.inputs["blockPublicAcls"] and private.inputs["restrictPublicBuckets"]
    (lifecycle,) = recorded.of_type(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    assert lifecycle.inputs["rules"][0]["expiration"]["days"] == 90


def test_one_iot_thing_and_policy_per_gateway(recorded: Recorder) -> None:
    things = recorded.of_type("aws:iot/thing:Thing")
    assert [t.inputs["name"] for t in things] == ["austin-additive-01-gw-01"]
    (policy,) = recorded.of_type("aws:iot/policy:Policy")
    assert "client/austin-additive-01-gw-01" in policy.inputs["policy"]
    assert "topic/nodekit/austin-additive-01/*" in policy.inputs["policy"]


def test_iot_registration_can_be_turned_off() -> None:
    data = copy.deepcopy(BASE)
    data["cloud"]["iot"]["enabled"] = False
    recorded = run_program(data)
    assert not recorded.of_type("aws:iot/thing:Thing")
    assert not recorded.of_type("aws:iot/policy:Policy")
    assert recorded.of_type("aws:s3/bucket:Bucket")


def test_dns_zone_is_private_to_the_site_vpc(recorded: Recorder) -> None:
    (zone,) = recorded.of_type("aws:route53/zone:Zone")
    assert zone.inputs["vpcs"] == [{"vpcId": "vpc-0a1b2c3d4e5f67890", "vpcRegion": "us-east-1"}]


def test_dns_record_per_host(recorded: Recorder) -> None:
    records = recorded.of_type("aws:route53/record:Record")
    by_name = {r.inputs["name"]: r.inputs["records"] for r in records}
    assert by_name == {
        "gw-01.austin-additive-01.example.internal": ["10.43.1.1"],
        "edge-01.austin-additive-01.example.internal": ["10.43.1.10"],
        "hist-01.austin-additive-01.example.internal": ["10.43.2.10"],
    }


def test_local_target_network_per_zone_and_container_per_host(recorded: Recorder) -> None:
    dynamic = [r for r in recorded.resources if r.typ.startswith("pulumi-python:dynamic")]
    networks = {r.inputs["name"]: r.inputs for r in dynamic if r.typ.endswith(":Network")}
    assert set(networks) == {"nk-austin-additive-01-ot", "nk-austin-additive-01-it"}
    assert networks["nk-austin-additive-01-ot"]["subnet"] == "10.43.1.0/24"
    assert networks["nk-austin-additive-01-ot"]["internal"] is True
    # this machine's bridge address is never one of the hosts'
    assert networks["nk-austin-additive-01-ot"]["gateway"] not in {"10.43.1.1", "10.43.1.10"}
    containers = {r.inputs["hostname"]: r.inputs for r in dynamic if r.typ.endswith(":Container")}
    assert set(containers) == {"gw-01", "edge-01", "hist-01"}
    gateway = containers["gw-01"]
    assert sorted(n["address"] for n in gateway["networks"]) == ["10.43.1.1", "10.43.2.1"]
    assert gateway["sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert containers["edge-01"]["sysctls"] == {}
    assert containers["edge-01"]["memory_mb"] == 512
    assert containers["edge-01"]["image"] == "nodekit/node:test"


def test_a_zone_network_is_labelled_with_the_zones_vlan() -> None:
    data = copy.deepcopy(BASE)
    del data["cloud"]
    data["network"]["zones"][0]["vlan"] = 41  # ot; it has none
    dynamic = [r for r in run_program(data).resources if r.typ.startswith("pulumi-python:dynamic")]
    vlans = {r.inputs["name"]: r.inputs["vlan"] for r in dynamic if r.typ.endswith(":Network")}
    assert vlans == {"nk-austin-additive-01-ot": "41", "nk-austin-additive-01-it": "none"}


def test_no_cloud_section_no_cloud_resources() -> None:
    data = copy.deepcopy(BASE)
    del data["cloud"]
    recorded = run_program(data)
    assert not [r for r in recorded.resources if r.typ.startswith("aws:")]


def test_plan_routes_other_zones_through_the_gateway() -> None:
    node = plan(BASE)
    assert node.host("edge-01").routes == (("10.43.2.0/24", "10.43.1.1"),)
    assert node.host("hist-01").routes == (("10.43.1.0/24", "10.43.2.1"),)
    assert node.host("gw-01").routes == ()
