"""Admin patches of a simulated Zuora order: its state, lines and subscriptions.

A patch is one JSON object; every key is optional:

    {"state": "complete", "description": "...",
     "line_items": [{"id": "...", "quantity": 5, "state": "booked", "quantity_fulfilled": 5}],
     "add_line_items": [{partial line}], "remove_line_items": ["<line id>"],
     "subscriptions": [{"subscription_number": "A-S00000001", "state": "active",
                        "subscription_items": [{"subscription_item_number": "C-00000001",
                                                "quantity": 3, "state": "active"}]}],
     "add_subscriptions": [{partial subscription}]}

It is applied to a copy, so a patch that fails anywhere changes nothing. Whatever it
touches gets a new `updated_time`, and so does the order, which moves it to the head of
Zuora's default listing order (most recently updated first). Patches are literal: a
subscription turning active does not activate its items (the scenario does that).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from watcher.simulator.zuora import orders
from watcher.simulator.zuora.orders import Ids, invalid

_KEYS = frozenset(
    {
        "state",
        "description",
        "line_items",
        "add_line_items",
        "remove_line_items",
        "subscriptions",
        "add_subscriptions",
    }
)


def patched(order: Mapping[str, Any], patch: object, *, ids: Ids) -> dict[str, Any]:
    """A new order with `patch` applied; ApiError (400/404) and no change when it is wrong."""
    if not isinstance(patch, Mapping):
        raise invalid("the patch must be a JSON object")
    if unknown := sorted(patch.keys() - _KEYS):
        raise invalid(f"unknown patch fields: {', '.join(unknown)}")
    result = copy.deepcopy(dict(order))
    if "state" in patch:
        result["state"] = orders.expect_choice(patch["state"], orders.ORDER_STATES, "state")
    if "description" in patch:
        result["description"] = orders.expect_text(patch["description"], "description")
    _patch_lines(result, patch, ids=ids)
    _patch_subscriptions(result, patch, ids=ids)
    orders.touch(result, ids.now())
    return result


def _patch_lines(order: dict[str, Any], patch: Mapping[str, Any], *, ids: Ids) -> None:
    removed = set(orders.expect_list(patch.get("remove_line_items", []), "remove_line_items"))
    known = {line["id"] for line in order["line_items"]}
    if missing := sorted(str(key) for key in removed - known):
        raise orders.not_found("order line item", ", ".join(missing))
    order["line_items"] = [line for line in order["line_items"] if line["id"] not in removed]
    for change in orders.expect_list(patch.get("line_items", []), "line_items"):
        _patch_line(order, orders.expect_object(change, "line item patch"), ids=ids)
    for partial in orders.expect_list(patch.get("add_line_items", []), "add_line_items"):
        order["line_items"].append(orders.build_line(partial, order_id=order["id"], ids=ids))


def _patch_line(order: dict[str, Any], change: Mapping[str, Any], *, ids: Ids) -> None:
    line = _find(order["line_items"], "id", change.get("id"), "order line item")
    if "state" in change:
        line["state"] = orders.expect_choice(change["state"], orders.LINE_STATES, "state")
    for field in ("quantity", "quantity_fulfilled"):
        if field in change:
            line[field] = orders.expect_quantity(change[field])
    line["quantity_pending_fulfillment"] = max(line["quantity"] - line["quantity_fulfilled"], 0)
    orders.touch(line, ids.now())


def _patch_subscriptions(order: dict[str, Any], patch: Mapping[str, Any], *, ids: Ids) -> None:
    for raw in orders.expect_list(patch.get("subscriptions", []), "subscriptions"):
        change = orders.expect_object(raw, "subscription patch")
        sub = _find(
            order["subscriptions"],
            "subscription_number",
            change.get("subscription_number"),
            "subscription",
        )
        if "state" in change:
            sub["state"] = orders.expect_choice(
                change["state"], orders.SUBSCRIPTION_STATES, "state"
            )
        for item_change in orders.expect_list(
            change.get("subscription_items", []), "subscription_items"
        ):
            _patch_item(sub, orders.expect_object(item_change, "subscription item patch"), ids=ids)
        orders.touch(sub, ids.now())
    for partial in orders.expect_list(patch.get("add_subscriptions", []), "add_subscriptions"):
        order["subscriptions"].append(orders.build_subscription(partial, order=order, ids=ids))


def _patch_item(sub: dict[str, Any], change: Mapping[str, Any], *, ids: Ids) -> None:
    items = [item for plan in sub["subscription_plans"] for item in plan["subscription_items"]]
    number = change.get("subscription_item_number")
    item = _find(items, "subscription_item_number", number, "subscription item")
    if "state" in change:
        item["state"] = orders.expect_choice(change["state"], orders.ITEM_STATES, "state")
        item["active"] = item["state"] == "active"
    if "quantity" in change:
        item["quantity"] = orders.expect_quantity(change["quantity"])
    orders.touch(item, ids.now())


def _find(resources: list[dict[str, Any]], key: str, value: object, what: str) -> dict[str, Any]:
    for resource in resources:
        if resource[key] == value:
            return resource
    raise orders.not_found(what, str(value))
