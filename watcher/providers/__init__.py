"""Vendor adapters: each turns one vendor account's API into canonical `Order`s.

`http` is the shared choke point (error translation, retries, Retry-After) and `tokens` the
shared client-credentials token cache; each vendor module implements `core.ports.Provider`.
"""
