"""Signed webhook notifier: POSTs each notice as JSON to a configured URL."""
from .notifier import WebhookConfig, WebhookNotifier, verify_signature

__all__ = ["WebhookConfig", "WebhookNotifier", "verify_signature"]
