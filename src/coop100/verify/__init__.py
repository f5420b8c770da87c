"""Verify a published package: frictionless, checksums and the fast columnar checks."""
