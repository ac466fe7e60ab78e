"""Server-rendered pages and the websocket. Calls services, never the store.

Nothing imports this package except ``tidings.app``.
"""
