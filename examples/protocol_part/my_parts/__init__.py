"""A user's own protocol parts (examples/protocol_part/README in the main README)."""
