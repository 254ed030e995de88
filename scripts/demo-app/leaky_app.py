#!/usr/bin/python3
"""A small application with the bug behind the outage: it takes a connection, starts a transaction, and never
finishes it, so every request leaves one more session idle in transaction until PostgreSQL has no connections
left. It reports itself under application_name (PGAPPNAME), as a pool configured by poolguard would.

    leaky_app.py --leak-every SECONDS --max-leaked N [--healthy N]

Connection parameters come from the usual libpq variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGAPPNAME).
--healthy N keeps N well-behaved connections open as well. SIGTERM closes everything.
"""
import argparse
import os
import signal
import sys
import time

import psycopg2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leak-every", type=float, default=1.0, help="seconds between leaked connections")
    parser.add_argument("--max-leaked", type=int, default=10, help="stop leaking after this many")
    parser.add_argument("--healthy", type=int, default=0, help="well-behaved idle connections to hold")
    args = parser.parse_args()

    stop = False

    def on_term(_signum, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    app = os.environ.get("PGAPPNAME", "leaky-app")
    healthy = [psycopg2.connect(application_name=app) for _ in range(args.healthy)]
    for conn in healthy:
        conn.autocommit = True
    leaked = []
    next_leak = time.monotonic()
    while not stop:
        if len(leaked) < args.max_leaked and time.monotonic() >= next_leak:
            try:
                conn = psycopg2.connect(application_name=app)
                cur = conn.cursor()
                cur.execute("SELECT count(*) FROM pg_class")  # opens the transaction that is never closed
                cur.fetchone()
                leaked.append(conn)
                print(f"{app}: leaked connection {len(leaked)}", flush=True)
            except psycopg2.OperationalError as err:
                print(f"{app}: cannot connect: {str(err).strip()}", file=sys.stderr, flush=True)
            next_leak = time.monotonic() + args.leak_every
        time.sleep(0.1)
    for conn in leaked + healthy:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
