"""The RabbitMQ adapter: topology, a confirming publisher, and the outbox relay.

`topology` declares the exchanges and queues, `publisher.Publisher` sends outbox records
with publisher confirms, and `relay.Relay` moves the outbox to the broker until cancelled.
Library errors leave this package only as `BusError`.
"""
