"""Load the published package into SQLite, as the site serves it."""
