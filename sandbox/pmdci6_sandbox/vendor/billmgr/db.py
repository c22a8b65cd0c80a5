"""db_query & co. as in the public vendor copy (billmgr/db.py), over the sandbox sqlite store.

MySQL placeholders are accepted as written: `%s` positional, `%(name)s` named.
"""

import re
import sqlite3
from functools import lru_cache

from billmgr import MGR_ROOT
from billmgr.exception import XmlException

STORE = MGR_ROOT / "var" / "billmgr-sandbox.sqlite"
BUSY_TIMEOUT_MS = 60_000
_NAMED = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=1)
def __get_db_con():
    if not STORE.exists():
        raise XmlException("db", "connect", str(STORE))
    conn = sqlite3.connect(STORE, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _rows(cursor):
    return [dict(row) for row in cursor.fetchall()]


def db_execute(query: str, *params):
    __get_db_con().execute(query.replace("%s", "?"), params)


def db_query(query: str, *params):
    return _rows(__get_db_con().execute(query.replace("%s", "?"), params))


def get_first_record(query: str, *params):
    rows = db_query(query, *params)
    return rows[0] if rows else None


def query_with_no_records(query: str, *params):
    db_execute(query, *params)


def db_query_dict(query: str, **params):
    return _rows(__get_db_con().execute(_NAMED.sub(r":\1", query), params))


def get_first_record_dict(query: str, **params):
    rows = db_query_dict(query, **params)
    return rows[0] if rows else None


def query_with_no_records_dict(query: str, **params):
    __get_db_con().execute(_NAMED.sub(r":\1", query), params)
