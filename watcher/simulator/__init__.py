"""The bundled vendor simulator: real HTTP APIs in memory, for tests, benchmarks and the demo.

Layout: the generic modules know no vendor. `server` serves a vendor (`VendorApi`) and
defines what every world has (`World`: clock, Random, demo `Credentials`, fault book,
request log, token book) and how a vendor looks on the wire to the generic parts
(`Wire`); `faults` injects faults, `requestlog` keeps the request log, `tokens` the
issued tokens, `admin` the admin plumbing, JSON replies and the scenarios' shared draws.

Each vendor is a package named after its provider (`adobe_vip`, `partner_center`,
`elastic_path`, `zuora`) with the same modules: `world` (its state), `orders` (stored
orders and their JSON), `routes` (the vendor API), `admin` (admin routes), `scenario`
(seed and advance), plus `listing` (Adobe, Elastic Path, Zuora: list queries and pages)
and `edits` (Elastic Path, Zuora: admin create bodies and patches). Every package's
`__init__` offers the same interface: `NAME`, `CREDENTIALS`, `api(state)` and
`seeded(customers=, orders_per_customer=, now=, rng=)`.

    api, customer_ids = zuora.seeded(customers=2, orders_per_customer=5, now=now, rng=rng)
    async with running(api) as sim:
        ...  # sim.base_url, sim.token_url, sim.state
"""

from watcher.simulator.server import Credentials, Simulator, VendorApi, running, serve_forever

__all__ = ["Credentials", "Simulator", "VendorApi", "running", "serve_forever"]
