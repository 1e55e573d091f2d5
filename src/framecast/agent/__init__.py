"""The desktop Recording Agent: capture, local spool, control channel and resumable upload."""
