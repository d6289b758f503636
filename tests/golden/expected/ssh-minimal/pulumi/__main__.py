"""Pulumi program of node ssh-minimal, rendered by nodekit 0.1.0.

The resources are declared by nodekit's component library
(nodekit.pulumi.node); this program only hands it the merged blueprint.
"""

import json
import pathlib

from nodekit.pulumi.node import program

program(json.loads((pathlib.Path(__file__).parent.parent / "blueprint.json").read_text()))
