"""The typed DCImanager 6 client: `client` (calls), `session` (login, token reuse, retries,
TLS), `routes` (every path, confirmed or inferred), `query` (where filters), `models`, `errors`.
"""
