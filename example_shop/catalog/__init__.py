"""The example shop's catalogue: categories and products."""
