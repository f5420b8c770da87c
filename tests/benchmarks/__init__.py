"""The benchmark scripts and their shared code run on tiny archives."""
