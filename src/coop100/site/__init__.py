"""The Datasette site: metadata, canned queries, the hardening plugin and templates."""
