"""Tests of src/coop100/verify/."""
