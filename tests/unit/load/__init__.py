"""Tests of src/coop100/load/."""
