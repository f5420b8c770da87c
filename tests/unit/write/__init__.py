"""Tests of src/coop100/write/."""
