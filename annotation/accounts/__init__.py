"""Accounts: who may call the platform, and how — the ground floor every app's pages and API stand on.

- :mod:`.tokens` — personal API tokens: create, revoke, look up (stored as SHA-256 digests).
- :mod:`.authentication` — the DRF authentication class for ``Authorization: Bearer <token>``.
- :mod:`.throttling` — failed sign-in counting for the login pages.
- :mod:`.views` — the account page, token pages and the throttled login (browser).
- :mod:`.api` — the API's base classes (``ApiView``, ``StudyScopedView``, pagination, the one error
  body and exception handler) and the ``/api/me/`` and ``/api/tokens/`` endpoints.

It lives in ``annotation`` because annotation is the floor every app may import (inference and
evaluation build their API views on :class:`.api.ApiView`); ``mi_platform`` only names these classes
in its settings and URLs. The ``ApiToken`` table stays in annotation's models (and migrations).
"""
