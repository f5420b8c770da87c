"""Tests of src/coop100/versions/."""
