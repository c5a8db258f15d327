"""The finance console (财务管理后台): users, roles and permissions, password + TOTP login,
server-side sessions, the tamper-evident operation log, and the console API at ``/console/api/``.

The browser pages live in ``static/`` and are served at ``/console/``. See docs/console.md.
"""
