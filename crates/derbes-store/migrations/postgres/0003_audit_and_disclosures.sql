-- The audit log: append-only, each record's hash covers the record and the
-- previous record's hash. Records name ids, purposes, categories and reasons,
-- never values of personal data.
CREATE TABLE audit_log (
    seq        BIGINT NOT NULL PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    subject_id TEXT,
    purpose    TEXT,
    categories TEXT    NOT NULL,
    decision   TEXT    NOT NULL,
    reasons    TEXT    NOT NULL,
    details    TEXT    NOT NULL,
    prev_hash  BYTEA    NOT NULL,
    hash       BYTEA    NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject_id, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_at ON audit_log (at);

-- Ed25519-signed checkpoints of the chain.
CREATE TABLE audit_checkpoints (
    seq        BIGINT NOT NULL PRIMARY KEY,
    hash       BYTEA    NOT NULL,
    signature  BYTEA    NOT NULL,
    public_key BYTEA    NOT NULL,
    at         BIGINT NOT NULL
);

-- Who received what, when and why (section 6): the subject's "who has my data".
CREATE TABLE disclosures (
    subject_id    TEXT    NOT NULL,
    disclosure_id TEXT    NOT NULL,
    recipient     TEXT    NOT NULL,
    purpose       TEXT    NOT NULL,
    categories    TEXT    NOT NULL,
    legal_basis   TEXT,
    reference     TEXT,
    cross_border  BIGINT NOT NULL,
    at            BIGINT NOT NULL,
    audit_seq     BIGINT NOT NULL,
    notice_due    BIGINT,
    notified_at   BIGINT,
    PRIMARY KEY (subject_id, disclosure_id)
);
CREATE INDEX disclosures_notice ON disclosures (notice_due);

ALTER TABLE subjects ADD COLUMN relationship_ended_at BIGINT;
