"""`ptc serve`: the Anthropic Messages API with programmatic tool calling, any model behind it."""
