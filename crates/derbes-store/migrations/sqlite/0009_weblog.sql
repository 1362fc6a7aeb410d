-- Depersonalised usage statistics (policy 3.2): per Almaty day, per
-- dimension value, the requests and the unique visitors (an exact set of
-- 64-bit visitor digests, or a HyperLogLog sketch) — no address, no path
-- with ids, no query string. `dim` 'total' holds the day's total.
CREATE TABLE weblog_cells (
    day      TEXT    NOT NULL,
    dim      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    requests INTEGER NOT NULL,
    visitors BLOB    NOT NULL,
    PRIMARY KEY (day, dim, value)
);

-- Where `derbes ingest --follow` got to in each file, committed with the
-- aggregates it produced: after a crash nothing is counted twice or skipped.
CREATE TABLE weblog_checkpoints (
    source     TEXT    NOT NULL PRIMARY KEY,
    identity   TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
