"""Tidings: a self-hosted team chat server whose outgoing webhooks are Slack- and Mattermost-compatible."""

__version__ = "0.1.0"
