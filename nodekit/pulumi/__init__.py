"""Pulumi side of nodekit: the component library rendered programs call, and
the dynamic Docker provider behind local-target resources."""
