"""Notifiers bundled with yinyi."""
