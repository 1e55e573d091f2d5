"""Use cases. Each takes its ports as keyword arguments; none reaches for globals."""
