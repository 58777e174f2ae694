"""queue layer."""
