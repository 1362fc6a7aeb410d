-- The KEK new data keys are wrapped under, for every process at once: a
-- writer checks it in the transaction that stores a wrapped key, so a
-- rotation another process made is never missed (the keyring files are
-- read once, at start). One row; the engine writes it before its first
-- wrap and a rotation changes it.
CREATE TABLE key_state (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    active_kek TEXT    NOT NULL,
    changed_at INTEGER NOT NULL                -- unix microseconds
);
