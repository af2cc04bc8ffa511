"""Shared test vectors and the bit-exact comparison used by every backend (C simulation now, RTL next)."""
