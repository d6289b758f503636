"""OT security policy over blueprints: rules mapped to IEC 62443-3-3 SRs, waivers."""
