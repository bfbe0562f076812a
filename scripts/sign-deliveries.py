#!/usr/bin/env python3
"""Writes signed charge.succeeded deliveries for the wrk scripts, one per line:
"<NextGen-Signature>\t<body>". wrk's Lua has no HMAC, so requests are signed beforehand,
exactly as NextGen signs: hex HMAC-SHA256(secret, f"{t}.{body}") with t = now.

usage: SECRET=whsec_... sign-deliveries.py OUT_FILE COUNT
"""
import hashlib
import hmac
import json
import os
import sys
import time


def charge(run: str, n: int, now: int) -> dict:
    # A realistic charge, as examples/src/lib.rs `sample` renders it.
    return {
        "id": f"ch_load_{run}_{n}",
        "object": "charge",
        "amount": 2000 + n % 7 * 100,
        "amount_captured": 2000 + n % 7 * 100,
        "amount_refunded": 0,
        "balance_transaction": f"txn_load_{run}_{n}",
        "captured": True,
        "created": now,
        "currency": "usd",
        "customer": "cus_8mNq2Lp5Zk9Xw",
        "description": "My First Test Charge",
        "disputed": False,
        "failure_code": None,
        "failure_message": None,
        "invoice": None,
        "livemode": False,
        "metadata": {"order_id": str(6735 + n)},
        "paid": True,
        "payment_intent": f"pi_load_{run}_{n}",
        "receipt_email": "jane.doe@example.com",
        "receipt_url": f"https://pay.nextgen.tech/receipts/ch_load_{run}_{n}",
        "refunded": False,
        "statement_descriptor": "NEXTGEN TEST",
        "status": "succeeded",
    }


def main() -> None:
    out_path, count = sys.argv[1], int(sys.argv[2])
    secret = os.environ["SECRET"].encode()
    now = int(time.time())
    run = f"{now:x}"
    with open(out_path, "w") as out:
        for n in range(count):
            event = {
                "id": f"evt_load_{run}_{n:06d}",
                "object": "event",
                "api_version": "2026-04-17",
                "created": now,
                "livemode": False,
                "type": "charge.succeeded",
                "pending_webhooks": 1,
                "data": {"object": charge(run, n, now)},
            }
            body = json.dumps(event, separators=(",", ":"))
            signature = hmac.new(secret, f"{now}.{body}".encode(), hashlib.sha256).hexdigest()
            out.write(f"t={now},v1={signature}\t{body}\n")


if __name__ == "__main__":
    main()
