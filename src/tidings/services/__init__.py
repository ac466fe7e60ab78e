"""Use cases. One public function = one transaction; the only layer that combines rules and storage.

May import ``tidings.domain``, ``tidings.store``, the pure ``tidings.webhooks`` parts
(matching, payloads, signing, replies, response_urls) and ``webhooks.announcements`` (a reply
post's ``posted`` event); never ``api``, ``web`` or ``cli``. A transaction is one unit of
work handed to ``store.database.Database.write``/``read``: a plain function over a connection.
"""
