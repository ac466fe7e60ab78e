"""The outgoing-webhook engine: matching, payloads, signing, retry policy, replies and delivery."""
