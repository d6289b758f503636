"""The target interface: how a node's hosts are reached, supplied and torn down.

A target is chosen by name (``site.target``) from :data:`nodekit.targets.TARGETS`.
Render asks it how Ansible and testinfra reach each host and what the roles
must know of the hosts; the run asks it to check the hosts before any change
(preflight), to hand the site bundle to them, how to run Ansible and
testinfra against them, and to remove what a stack does not know of.
Everything has a default but the connection strings: a target overrides
only what differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from nodekit.errors import StageError
from nodekit.render.plan import HostPlan, NodePlan

LineFn = Callable[[str], None]


@dataclass(frozen=True)
class RunAccess:
    """What a run needs to reach the hosts: options of the operator and state paths."""

    state_root: Path  # the node's state folder
    run_dir: Path
    identity: Path | None = None  # the operator's private key (else ssh-agent)
    accept_new_host_keys: bool = False
    needed_mb: int = 0  # room the bundle needs on each host
    on_line: LineFn | None = None
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # preflight -> later stages
    former_hosts: tuple[HostPlan, ...] = ()  # removed from the blueprint, still to clean up


@dataclass(frozen=True)
class Runner:
    """How the configure and verify stages run their tools against the hosts."""

    env: dict[str, str] = field(default_factory=dict)  # added to the tools' environment
    extra_vars: dict[str, Any] = field(default_factory=dict)  # for every host
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)  # per host


@dataclass(frozen=True)
class PreflightProblem:
    host: str
    check: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.host}: {self.check}: {self.problem} (fix: {self.fix})"


class Target:
    """Base of every target; see the module docstring."""

    name: ClassVar[str]
    #: Whether a site bundle carries the node image (hosts made from it here).
    ships_image: ClassVar[bool] = False
    #: Toolchain parts (`nodekit doctor` names) this target needs on the operator's machine.
    toolchain: ClassVar[tuple[str, ...]] = ()
    #: Whether the infrastructure destroys a host the blueprint drops (else nodekit
    #: removes its own software from it, and the machine stays).
    destroys_removed_hosts: ClassVar[bool] = False

    def __init__(self, node: NodePlan) -> None:
        self.node = node

    # Render: how the tools reach each host; what the roles must know.
    def connection_vars(self, host: HostPlan) -> dict[str, Any]:
        raise NotImplementedError

    def testinfra_spec(self, host: HostPlan) -> str:
        raise NotImplementedError

    def host_command(self, host: HostPlan, command: str) -> str:
        """The shell line an operator types to run ``command`` as root on ``host``."""
        raise NotImplementedError

    def role_vars(self) -> dict[str, Any]:
        """Variables every host's roles get (group_vars), e.g. what they may manage."""
        return {"nodekit_chrony_clock_control": True, "nodekit_manage_ip_forward": True}

    def stack_config(self) -> dict[str, str]:
        """`nodekit:` settings of the Pulumi stack file."""
        return {}

    def pulumi_hosts(self, config: Any) -> Any:
        """Inside the node's Pulumi program: the hosts' resources, if the target
        makes any, and the ``hosts`` output (host name -> how Ansible reaches it).
        By default the hosts exist already: nothing is created."""
        return {h.name: h.connect_address for h in self.node.hosts}

    # Run: stages call these, in this order.
    def prepare_infrastructure(self, backend: Any, on_line: LineFn) -> None:
        """What must exist before the node's own stack (the local WAN)."""
        return

    def preflight(self, access: RunAccess) -> list[PreflightProblem]:
        """Every problem that must stop the run before any host is changed."""
        return []

    def deliver_bundle(self, bundle: Path, access: RunAccess) -> int:
        """Put the site bundle where the hosts' apt reads it; returns files changed."""
        return 0

    def equip(self, secrets: dict[str, str]) -> int:
        """Hand each machine's credentials to what stands in for it (the local
        target's twins); how many were given. Real machines have their own."""
        return 0

    def runner(self, access: RunAccess) -> Runner:
        return Runner()

    def run_script(self, host: HostPlan, script: str, access: RunAccess) -> tuple[int, str]:
        """Run a POSIX shell script as root on ``host``; its exit code and stdout."""
        raise NotImplementedError

    def infrastructure_digest(self) -> str | None:
        """A digest of the node's infrastructure as it is live (what Pulumi made);
        ``""`` when the target makes none (the hosts exist already)."""
        return ""

    def remove_leftovers(self, keep: set[str] | None = None) -> int:
        """Remove what the node left outside its stack (a crash mid-create), all but
        the resource ids in ``keep`` (what the stack records); count."""
        return 0

    def outage(self) -> PreflightProblem | None:
        """What of this machine the target itself relies on and that stopped
        answering (the local target's Docker engine), with its fix; None when all
        answers. Asked when a stage fails, so the failure names its cause."""
        return None

    def destroy_note(self) -> str:
        """What destroy does to the hosts themselves, said plainly."""
        return ""


@contextmanager
def outage_named(target: Target) -> Iterator[None]:
    """A stage failing in the block is said as the target's outage that caused
    it (the Docker engine stopped mid-run), with that fix, if it has one."""
    try:
        yield
    except StageError as error:
        outage = target.outage()
        if outage is None:
            raise
        raise StageError(
            f"{outage.check} {outage.problem}: {error.detail}",
            node=error.node, stage=error.stage, host=error.host, fix=outage.fix,
        ) from None  # fmt: skip
