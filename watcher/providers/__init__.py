"""Vendor adapters: each turns one vendor account's API into canonical `Order`s.

One folder per vendor, with the same files in each: `adapter.py` (endpoints, paging, what
to ask for), `replies.py` (the models of the vendor's replies) and `mapping.py` (to
canonical orders). Beside them, the parts every vendor shares:

    client.py     VendorClient: rate limit, budget, tokens, retries, tracing, parsing
    translate.py  the one translation of library errors and HTTP statuses; redaction
    retry.py      backoff, Retry-After and the retry loop
    tokens.py     OAuth token cache (client credentials, refresh token)
    guard.py      rate limiter, RateLimit-* budget, circuit breaker
    reply.py      the reply base models, JSON decoding and validation
    connect.py    builds a source's adapter from its vendor's name (`watcher.vendors`)
"""
