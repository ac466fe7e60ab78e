"""The Mattermost API v4 transport: parse → one service call → serialise.

May import services, domain and errors; nothing imports this package except ``tidings.app``.
"""
