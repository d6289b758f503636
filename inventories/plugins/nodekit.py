"""Where Ansible finds the nodekit inventory plugin (see nodekit/inventory_plugin.py)."""

from nodekit.inventory_plugin import DOCUMENTATION, InventoryModule

__all__ = ["DOCUMENTATION", "InventoryModule"]
