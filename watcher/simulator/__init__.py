"""The bundled vendor simulator: real HTTP APIs in memory, for tests, benchmarks and the demo.

Layout: the generic parts know no vendor (`faults` for fault injection, `requestlog` for the
request log, `tokens` for issued tokens, `admin` for the admin plumbing and the routes every
world shares, `server` for the application and its lifecycle); each vendor brings its world
and routes (`adobe_vip` with `adobe_orders` and `adobe_listing`, its admin routes in
`adobe_admin`, and `adobe` tying them into one served `VendorApi`); `scenario` seeds
worlds and moves orders through their lifecycles.

    state = AdobeVipState(clock, random.Random(1))
    scenario.seed(state, customers=2, orders_per_customer=5, now=clock())
    async with server.running(adobe.api(state)) as sim:
        ...  # sim.base_url, sim.token_url, sim.state
"""

from watcher.simulator.adobe_vip import CLIENT_ID, CLIENT_SECRET, AdobeVipState
from watcher.simulator.server import Simulator, VendorApi, running, serve_forever

AdobeSimulator = Simulator[AdobeVipState]

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "AdobeSimulator",
    "AdobeVipState",
    "Simulator",
    "VendorApi",
    "running",
    "serve_forever",
]
