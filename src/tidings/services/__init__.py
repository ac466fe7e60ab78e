"""Use cases. One public function = one transaction; the only layer that combines rules and storage.

May import ``tidings.domain``, ``tidings.store``, the pure ``tidings.webhooks`` parts
(matching, payloads, signing) and ``tidings.webhooks.queue``; never ``api``, ``web`` or ``cli``.
"""
