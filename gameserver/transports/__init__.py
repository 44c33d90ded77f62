"""Transports: WebSocket (picows or websockets) and raw TCP, all behind `Link`."""
