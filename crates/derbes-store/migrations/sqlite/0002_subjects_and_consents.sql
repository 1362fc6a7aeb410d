-- Subjects and their personal data, sealed per subject (derbes-vault). Every
-- subject-scoped table is keyed by subject_id first so that it can be
-- distributed by subject. No column holds personal data in plaintext.
CREATE TABLE subjects (
    subject_id     TEXT    NOT NULL PRIMARY KEY,
    status         TEXT    NOT NULL,            -- active | destroyed
    created_at     INTEGER NOT NULL,            -- unix microseconds
    policy_version TEXT    NOT NULL,
    destroyed_at   INTEGER
);

-- The subject's data key, wrapped by a KEK. Deleting the row shreds the subject.
CREATE TABLE subject_keys (
    subject_id TEXT    NOT NULL PRIMARY KEY,
    kek_id     TEXT    NOT NULL,
    wrapped    BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX subject_keys_kek ON subject_keys (kek_id);

CREATE TABLE subject_fields (
    subject_id   TEXT    NOT NULL,
    field        TEXT    NOT NULL,              -- category.field
    sealed       BLOB    NOT NULL,              -- AES-256-GCM, AAD = subject + field
    source       TEXT    NOT NULL,              -- a source id of the policy (5.1)
    collected_at INTEGER NOT NULL,
    purposes     TEXT    NOT NULL,              -- comma-separated purpose ids
    version      INTEGER NOT NULL,
    PRIMARY KEY (subject_id, field)
);

-- Previous values after rectification, sealed under the same key, kept until keep_until.
CREATE TABLE subject_field_history (
    subject_id    TEXT    NOT NULL,
    field         TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    sealed        BLOB    NOT NULL,
    source        TEXT    NOT NULL,
    collected_at  INTEGER NOT NULL,
    replaced_at   INTEGER NOT NULL,
    sealed_reason BLOB    NOT NULL,
    keep_until    INTEGER NOT NULL,
    PRIMARY KEY (subject_id, field, version)
);

-- Exact lookup without the identifier: HMAC-SHA256 under the index key.
CREATE TABLE blind_index (
    kind       TEXT NOT NULL,                   -- iin | phone
    digest     BLOB NOT NULL,
    subject_id TEXT NOT NULL,
    PRIMARY KEY (kind, digest)
);
CREATE INDEX blind_index_subject ON blind_index (subject_id);

-- The consent ledger: rows are only ever inserted.
CREATE TABLE consents (
    subject_id     TEXT    NOT NULL,
    consent_id     TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    given_at       INTEGER NOT NULL,
    expires_at     INTEGER,
    record         TEXT    NOT NULL,            -- the record as JSON (no personal data)
    receipt_sha256 TEXT    NOT NULL,
    PRIMARY KEY (subject_id, consent_id)
);
CREATE UNIQUE INDEX consents_receipt ON consents (receipt_sha256);

CREATE TABLE consent_withdrawals (
    subject_id   TEXT    NOT NULL,
    consent_id   TEXT    NOT NULL,
    withdrawn_at INTEGER NOT NULL,
    evidence     TEXT    NOT NULL,
    PRIMARY KEY (subject_id, consent_id)
);

-- Organisations (3.4): not personal data, kept apart from subjects.
CREATE TABLE organizations (
    organization_id TEXT    NOT NULL PRIMARY KEY,
    bin             TEXT    NOT NULL UNIQUE,
    fields          TEXT    NOT NULL,           -- JSON object of organisation.* fields
    created_at      INTEGER NOT NULL
);

CREATE TABLE organization_representatives (
    organization_id TEXT    NOT NULL,
    subject_id      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (organization_id, subject_id)
);
CREATE INDEX organization_representatives_subject ON organization_representatives (subject_id);

-- Staff bearer tokens, stored as SHA-256 only.
CREATE TABLE staff_tokens (
    token_id     TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    token_sha256 TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
