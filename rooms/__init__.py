"""Pure zone/room model: zones, room groups, rooms, users, variables, permissions.

No sockets, no asyncio: every operation returns the events to deliver (rooms.outputs).
"""
