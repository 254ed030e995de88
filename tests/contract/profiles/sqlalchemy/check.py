"""Builds a SQLAlchemy engine from poolguard's SQLAlchemy variables the way docs/profiles.md shows and prints the
pool it ends up with. create_engine does not connect until the engine is used. With the argument "session" the
engine is built on DATABASE_URL and connects (psycopg2, through libpq): it prints what the session reports and what
became of a transaction left idle for IDLE_SLEEP_SECONDS."""
import os
import sys
import time

from sqlalchemy import create_engine, text


def engine_for(url):
    return create_engine(
        url,
        pool_size=int(os.environ["SQLALCHEMY_POOL_SIZE"]),
        max_overflow=int(os.environ["SQLALCHEMY_MAX_OVERFLOW"]),
        pool_timeout=float(os.environ["SQLALCHEMY_POOL_TIMEOUT"]),
        pool_recycle=int(os.environ["SQLALCHEMY_POOL_RECYCLE"]),
    )


def session():
    engine = engine_for(os.environ["DATABASE_URL"])
    with engine.connect() as conn:
        shown = conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar()
        print(f"idle_in_transaction_session_timeout={shown}")
    with engine.connect() as conn:
        conn.begin()
        conn.execute(text("SELECT 1"))
        time.sleep(float(os.environ["IDLE_SLEEP_SECONDS"]))
        try:
            conn.execute(text("SELECT 1"))
            print("after_idle=ok")
        except Exception as err:  # the DBAPI's error, wrapped by SQLAlchemy
            print("after_idle=error: " + str(getattr(err, "orig", err)).replace("\n", " ").strip())
    engine.dispose()


if len(sys.argv) > 1 and sys.argv[1] == "session":
    session()
    sys.exit(0)

engine = engine_for("postgresql://app@127.0.0.1:5432/orders")
pool = engine.pool
print(f"pool_class={type(pool).__name__}")
print(f"pool_size={pool.size()}")
# QueuePool keeps the limits in private attributes; there is no public getter for them.
print(f"max_overflow={pool._max_overflow}")
print(f"timeout={pool.timeout()}")
print(f"recycle={pool._recycle}")
print(f"total={pool.size() + pool._max_overflow}")
