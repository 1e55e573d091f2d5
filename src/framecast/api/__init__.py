"""HTTP and WebSocket interface: routers, schemas and the app factory."""
