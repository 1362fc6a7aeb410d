-- Imports of an existing user base (`derbes import`): where each file (by
-- its SHA-256) got to. Advanced in the same transaction as the subjects a
-- batch registers, so an interrupted import resumes after its last
-- committed line and registers nobody twice.
CREATE TABLE imports (
    import_id   TEXT    NOT NULL PRIMARY KEY,  -- SHA-256 of the file, hex
    lines_done  BIGINT  NOT NULL,
    imported    BIGINT  NOT NULL,
    refused     BIGINT  NOT NULL,
    started_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
