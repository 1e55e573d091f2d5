"""Named locks: in-process for one instance, Redis for a fleet."""
