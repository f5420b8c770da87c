"""The rules the records obey: per-field checks and the cross-record rules, each written once."""
