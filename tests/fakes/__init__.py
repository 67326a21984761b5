"""Wire-faithful stand-ins for model providers, served on 127.0.0.1 for the real SDK clients."""
