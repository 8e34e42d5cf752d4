"""The ASGI app factory, settings, request context, authentication and CLI."""
