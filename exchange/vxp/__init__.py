"""The national axis's client protocol (VXP), as the SDKVXP client speaks it (spec/vxp-api.md)."""
