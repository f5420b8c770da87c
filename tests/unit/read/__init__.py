"""Tests of src/coop100/read/."""
