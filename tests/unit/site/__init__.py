"""Tests of src/coop100/site/."""
