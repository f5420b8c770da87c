"""Unit tests, one folder per stage of the data's flow (src/coop100/<stage>/)."""
