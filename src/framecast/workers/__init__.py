"""Job handlers and the worker loop that runs them."""
