"""End to end: the real build, server, browser, nginx and CI steps."""
