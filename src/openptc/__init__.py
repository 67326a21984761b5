"""openptc: programmatic tool calling for any model."""
