"""Tests of src/coop100/rules/."""
