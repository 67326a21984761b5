"""Sandboxes: what every backend shares (bridge, protocol, pool, runtime); one wing per backend."""
