"""The component library that rendered Pulumi programs call.

A rendered ``__main__.py`` only loads the node's merged blueprint and calls
:func:`program`; the resources are declared here, where they are tested
(with Pulumi's mocks for the cloud part, with the real engine for the local
target).
"""

from __future__ import annotations

from typing import Any

import pulumi

from nodekit.pulumi.docker_provider import NODE_LABEL, Container, Network
from nodekit.pulumi.twin_provider import TWIN_DIR, Twin
from nodekit.render.plan import BUNDLE_MOUNT, EquipmentPlan, NodePlan, plan
from nodekit.render.uplink import WAN_NETWORK, uplink_gateway


class LocalNode(pulumi.ComponentResource):
    """A node on the local target: an internal network per zone, a systemd
    container per compute host at its blueprint addresses."""

    def __init__(
        self,
        node: NodePlan,
        *,
        image: str,
        bundle: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("nodekit:local:Node", node.name, None, opts)
        labels = {NODE_LABEL: node.name}
        child = pulumi.ResourceOptions(parent=self)
        self.networks = {
            zone.name: Network(
                f"{node.name}-{zone.name}",
                name=zone.network,
                subnet=zone.cidr,
                gateway=zone.bridge,
                internal=True,  # no route off this machine
                labels=labels,
                vlan=zone.vlan,  # a label: the zone network is the VLAN's L2 segment
                opts=child,
            )
            for zone in node.zones
        }
        self.containers: dict[str, Container] = {}
        wan_gateway = uplink_gateway(node)
        for host in node.hosts:
            wan: list[dict[str, Any]] = (
                [{"network": WAN_NETWORK, "address": str(node.uplink.get("address") or "")}]
                if host is wan_gateway
                else []
            )  # the WAN stack made it; the engine picks an address unless one is named
            self.containers[host.name] = Container(
                f"{node.name}-{host.name}",
                name=host.container,
                image=image,
                hostname=host.name,
                networks=[
                    {"network": self.networks[zone].name, "address": address}
                    for zone, address in host.addresses.items()
                ]
                + wan,
                memory_mb=host.memory_mb or None,
                cpus=host.cpus or None,
                # A gateway forwards between its zones; the container is created
                # with the sysctl set (its /proc/sys is read-only afterwards).
                sysctls={"net.ipv4.ip_forward": "1"} if host.is_gateway else None,
                mounts={bundle: BUNDLE_MOUNT} if bundle else None,
                labels=labels,
                opts=child,
            )
        self.twins = {
            machine.name: Twin(
                f"{node.name}-twin-{machine.name}",
                name=machine.container,
                image=image,
                network=self.networks[machine.duty.zone or ""].name,
                address=machine.duty.address or "",
                port=machine.duty.port,
                config=twin_config(node, machine),
                routes=list(machine.routes),
                bundle=bundle or "",
                labels=labels,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.containers.values())),
            )
            for machine in node.equipment
            if machine.twin and bundle
        }
        self.hosts = pulumi.Output.all(
            **{name: c.name for name, c in sorted(self.containers.items())}
        )
        self.register_outputs({"hosts": self.hosts})


def twin_config(node: NodePlan, machine: EquipmentPlan) -> dict[str, Any]:
    """What a twin is told (never a secret: those arrive by ``docker exec``)."""
    config: dict[str, Any] = {
        "node": node.name,
        "equipment": machine.describe(),
        "bind": "0.0.0.0",  # the twin's own container, on its zone's network only
        "state_file": f"{TWIN_DIR}/state",
        "secrets_file": f"{TWIN_DIR}/secrets.json",
        "interval_s": 5,
    }
    if machine.broker:
        config["broker"] = {"host": machine.broker[0], "port": machine.broker[1]}
    return config


def cloud_resources(node: NodePlan) -> dict[str, pulumi.Output[Any]]:
    """AWS resources of a node's ``cloud:`` section: archive bucket, IoT, DNS."""
    import pulumi_aws as aws

    cloud = node.cloud or {}
    tags = {"nodekit-node": node.name, "nodekit-region": node.region}
    archive = cloud.get("archive") or {}
    bucket = aws.s3.Bucket(
        f"{node.name}-archive", bucket=f"{archive['bucket_prefix']}-{node.name}", tags=tags
    )
    aws.s3.BucketVersioning(
        f"{node.name}-archive-versioning",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{node.name}-archive-encryption",
        bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}}],
    )
    aws.s3.BucketPublicAccessBlock(
        f"{node.name}-archive-private",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    retention = int(archive["retention_days"])
    aws.s3.BucketLifecycleConfiguration(
        f"{node.name}-archive-retention",
        bucket=bucket.id,
        rules=[
            {
                "id": "retention",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "expiration": {"days": retention},
                "noncurrent_version_expiration": {"noncurrent_days": retention},
            }
        ],
    )
    outputs: dict[str, pulumi.Output[Any]] = {"archive_bucket": bucket.bucket}

    things = {}
    iot = (cloud.get("iot") or {}).get("enabled", True)
    for host in (h for h in node.hosts if h.is_gateway and iot):
        thing = aws.iot.Thing(
            f"{node.name}-{host.name}",
            name=f"{node.name}-{host.name}",
            attributes={"node": node.name, "host": host.name},
        )
        policy = aws.iot.Policy(
            f"{node.name}-{host.name}-policy",
            name=f"{node.name}-{host.name}",
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["iot:Connect"],
                            "Resource": [thing.arn.apply(_client_arn)],
                        },
                        {
                            "Effect": "Allow",
                            "Action": ["iot:Publish", "iot:Receive"],
                            "Resource": [thing.arn.apply(lambda arn: _topic_arn(arn, node.name))],
                        },
                    ],
                }
            ),
        )
        things[host.name] = thing.name
        pulumi.export(f"iot_policy_{host.name}", policy.name)
    outputs["iot_things"] = pulumi.Output.all(**things) if things else pulumi.Output.from_input({})

    dns = cloud.get("dns") or {}
    zone_name = dns.get("zone") or node.domain
    if zone_name:
        zone = aws.route53.Zone(
            f"{node.name}-dns",
            name=zone_name,
            vpcs=[{"vpc_id": dns["vpc_id"], "vpc_region": cloud["region"]}],  # private
            comment=f"nodekit node {node.name}",
            tags=tags,
        )
        records = {}
        for host in node.hosts:
            fqdn = f"{host.name}.{node.name}.{zone_name}"
            aws.route53.Record(
                f"{node.name}-{host.name}-a",
                zone_id=zone.zone_id,
                name=fqdn,
                type="A",
                ttl=300,
                records=[host.address],
            )
            records[host.name] = fqdn
        outputs["dns_records"] = pulumi.Output.from_input(records)
    return outputs


def _client_arn(thing_arn: str) -> str:
    # arn:aws:iot:REGION:ACCOUNT:thing/NAME -> arn:aws:iot:REGION:ACCOUNT:client/NAME
    return thing_arn.replace(":thing/", ":client/")


def _topic_arn(thing_arn: str, node: str) -> str:
    base = thing_arn.split(":thing/", 1)[0]
    return f"{base}:topic/nodekit/{node}/*"


def program(data: dict[str, Any]) -> None:
    """The whole Pulumi program of one node, from its merged blueprint data."""
    config = pulumi.Config("nodekit")
    node = plan(data)
    from nodekit.targets import target_for

    pulumi.export("hosts", target_for(node).pulumi_hosts(config))
    if node.cloud:
        for key, value in cloud_resources(node).items():
            pulumi.export(key, value)
