"""Versions of the package: what changed between two, and the release notes."""
