"""Transports to the outside: pushing to a DMS endpoint, forwarding to an upstream axis."""
