"""What nodekit shows people: the topology graph and the offline audit report."""
