"""Deployment stages: bundle, Pulumi, Ansible, verification, locks, run records.

- :mod:`nodekit.run.bundle` builds a site bundle, the local apt repository
  (``deb [trusted=yes] file:/srv/nodekit/bundle ./``) that is a node's only
  package source, from the packages the roles name in
  ``<role>_apt_packages``.
"""
