"""JSON columns are written by one function (``store/compiled.json_text``), whichever path a
statement takes: SQLAlchemy's JSON type through ``conn.execute``, or a prepared statement on the
driver's cursor. What orjson refuses, the standard library writes."""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Table, select, text

from tidings.store.compiled import Prepared, json_text
from tidings.store.database import create_engine


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        {"from_webhook": "true", "text": "é ✓ 😀", "nested": [1, 2.5, None, True]},
        {"1": 2},
        {1: 2},  # not a string key: orjson refuses, json writes "1"
        {"big": 2**70},  # past 64 bits: orjson refuses
        {"lone": "\ud800"},  # a lone surrogate: orjson refuses, json escapes it
    ],
)
def test_json_text_spells_what_json_reads_back(value: Any) -> None:
    expected = json.loads(json.dumps(value))
    assert json.loads(json_text(value)) == expected


def test_both_paths_store_the_same_text(tmp_path: Path) -> None:
    metadata = MetaData()
    table = Table("t", metadata, Column("n", Integer), Column("doc", JSON))
    engine = create_engine(f"sqlite:///{tmp_path / 'j.db'}")
    value = {"header": "é", "list": [1, 2]}
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), {"n": 1, "doc": value})
            Prepared.insert(table).run(conn, {"n": 2, "doc": value})
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT doc FROM t ORDER BY n")).scalars().all()
            read = conn.execute(select(table.c.doc).order_by(table.c.n)).scalars().all()
    finally:
        engine.dispose()
    assert stored == [json_text(value)] * 2
    assert read == [value, value]
