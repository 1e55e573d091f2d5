"""The pure core: rules about recordings, uploads and events. No I/O, no frameworks."""
