"""Builds a SQLAlchemy engine from poolguard's SQLAlchemy variables the way docs/profiles.md shows and prints the
pool it ends up with. create_engine does not connect until the engine is used."""
import os

from sqlalchemy import create_engine

engine = create_engine(
    "postgresql://app@127.0.0.1:5432/orders",
    pool_size=int(os.environ["SQLALCHEMY_POOL_SIZE"]),
    max_overflow=int(os.environ["SQLALCHEMY_MAX_OVERFLOW"]),
    pool_timeout=float(os.environ["SQLALCHEMY_POOL_TIMEOUT"]),
    pool_recycle=int(os.environ["SQLALCHEMY_POOL_RECYCLE"]),
)
pool = engine.pool
print(f"pool_class={type(pool).__name__}")
print(f"pool_size={pool.size()}")
# QueuePool keeps the limits in private attributes; there is no public getter for them.
print(f"max_overflow={pool._max_overflow}")
print(f"timeout={pool.timeout()}")
print(f"recycle={pool._recycle}")
print(f"total={pool.size() + pool._max_overflow}")
