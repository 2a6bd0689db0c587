"""The seed page's swap answer, which the demo data reproduces (-110 points for +11 coins), for tests.

Kept apart from the product's own copy (payments_cli.openapi's example) so that tests check it.
"""

from __future__ import annotations

from typing import Any

WALLET = "0x0cE183FBE350BE042c9F456Da78CfADAA5Cf1225"

SEED_SWAP_VALUE: dict[str, Any] = {
    "au_id": 19,
    "point": {
        "mu_id": 28,
        "app_id": 1,
        "database_id": 1,
        "point_id": 1,
        "previous_point_quantity": 2100,
        "adjust_point_quantity": -110,
        "point_quantity": 1990,
    },
    "coin": {
        "coin_id": 2,
        "walletaddress": WALLET,
        "previous_coin_quantity": 0,
        "adjust_coin_quantity": 11,
        "coin_quantity": 11,
    },
    "log_id": 1,
    "event_id": 3,
}
