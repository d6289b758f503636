"""Poll one machine once, as nodekit's verify does on the host that drives it.

    python -m nodekit_equipment.probe --config FILE --name EQUIPMENT [--timeout S]

FILE is JSON: ``{"equipment": [<descriptions>], "secrets_file": PATH}``.

* exit 0, one JSON line on stdout: the machine answered with a state
  (``{"equipment", "protocol", "endpoint", "state", "metrics", "texts"}``).
  MQTT devices are not polled: they report ``"state": "publishes"`` and are
  checked through their telemetry instead.
* exit 1, one line on stderr ``EQUIPMENT (protocol at address:port): reason``.
* exit 2, one line on stderr: unknown equipment name or a bad config.
"""

import argparse
import json
import logging
import sys

from .common import ConfigError, SecretsFile, equipment_from_dict, load_json
from .readers import NotPolled, Unreachable, read


def probe(config: dict[str, object], name: str, timeout: float) -> tuple[int, str]:
    """(exit code, the one line to print) for ``name`` in a probe config."""
    items = config.get("equipment")
    if not isinstance(items, list):
        raise ConfigError("probe config: 'equipment' must be a list")
    matches = [e for e in items if isinstance(e, dict) and e.get("name") == name]
    if not matches:
        known = ", ".join(str(e.get("name")) for e in items if isinstance(e, dict)) or "none"
        raise ConfigError(f"{name}: no such equipment in the probe config (known: {known})")
    eq = equipment_from_dict(matches[0])
    secrets_path = config.get("secrets_file")
    secrets = SecretsFile(secrets_path if isinstance(secrets_path, str) else None)
    result: dict[str, object] = {"equipment": eq.name, "protocol": eq.protocol}
    result["endpoint"] = eq.endpoint
    try:
        reading = read(eq, secrets.section(eq.name), timeout)
    except NotPolled:
        result.update(state="publishes", metrics={}, texts={})
        return 0, json.dumps(result)
    except Unreachable as exc:
        return 1, str(exc)
    result.update(state=reading.state, metrics=reading.metrics, texts=reading.texts)
    return 0, json.dumps(result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nodekit_equipment.probe", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    # the protocol libraries must not add lines to the one-line answer
    logging.basicConfig(level=logging.CRITICAL)
    for lib in ("asyncua", "pymodbus"):
        logging.getLogger(lib).setLevel(logging.CRITICAL)
    try:
        code, line = probe(load_json(args.config, "probe config"), args.name, args.timeout)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(line, file=sys.stdout if code == 0 else sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
