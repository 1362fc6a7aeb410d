-- The operator's other systems that hold personal data (orders, chats,
-- analytics, the app's message sender) and must follow what derbes does.
-- Their signing secret is a note (owner system:<id>, sealed).
CREATE TABLE systems (
    system_id     TEXT    NOT NULL PRIMARY KEY,
    categories    TEXT    NOT NULL,          -- JSON array of category ids they hold
    sends_notices INTEGER NOT NULL,          -- the app's channel for notices to users
    transport     TEXT    NOT NULL CHECK (transport IN ('webhook', 'nats')),
    target        TEXT    NOT NULL,          -- an http(s) URL, or a JetStream subject
    confirm       TEXT    NOT NULL CHECK (confirm IN ('delivery', 'callback')),
    created_at    INTEGER NOT NULL,
    removed_at    INTEGER
);

-- The transactional outbox: what a system must follow, written in the same
-- transaction as the change. One row per (change, system); the event id is
-- the receiver's idempotency key. Ids, codes and notice texts only: never a
-- value of personal data.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    system_id    TEXT    NOT NULL REFERENCES systems (system_id),
    subject_id   TEXT,
    kind         TEXT    NOT NULL,
    request_id   TEXT,                       -- the request that completes only once this is confirmed
    notice_id    TEXT,
    payload      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    due_at       INTEGER,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'confirmed', 'dead')),
    attempts     INTEGER NOT NULL,
    next_at      INTEGER NOT NULL,
    last_error   TEXT,
    delivered_at INTEGER,
    confirmed_at INTEGER,
    confirmed_by TEXT                        -- delivery | callback | the officer's id
);
CREATE INDEX outbox_due ON outbox (state, next_at, seq);
CREATE INDEX outbox_order ON outbox (system_id, subject_id, seq);
CREATE INDEX outbox_request ON outbox (request_id);
CREATE INDEX outbox_notice ON outbox (notice_id);

-- Notices to subjects as work items: sent when their delivery is confirmed.
CREATE TABLE notices (
    notice_id  TEXT    NOT NULL PRIMARY KEY,
    subject_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('transfer', 'reconsent', 'breach')),
    source_id  TEXT    NOT NULL,             -- the disclosure, policy version or breach
    created_at INTEGER NOT NULL,
    due_at     INTEGER,
    sent_at    INTEGER,
    UNIQUE (kind, source_id, subject_id)
);
CREATE INDEX notices_open ON notices (sent_at, due_at);
CREATE INDEX notices_subject ON notices (subject_id);

-- The breach register (the Law, art. 25(2)(8)). Description, cause and
-- measures are notes (owner breach:<id>, sealed): they may name people.
CREATE TABLE breaches (
    breach_id      TEXT    NOT NULL PRIMARY KEY,
    state          TEXT    NOT NULL CHECK (state IN ('detected', 'assessed', 'notified', 'closed')),
    detected_at    INTEGER NOT NULL,
    notice_due     INTEGER NOT NULL,
    categories     TEXT    NOT NULL,
    affected_count INTEGER NOT NULL,
    count_known    INTEGER NOT NULL,         -- 1 when affected_count counts listed subjects
    reported_by    TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    assessed_at    INTEGER,
    notified_at    INTEGER,
    closed_at      INTEGER
);
CREATE INDEX breaches_open ON breaches (state, notice_due);
CREATE TABLE breach_subjects (
    subject_id TEXT NOT NULL,
    breach_id  TEXT NOT NULL REFERENCES breaches (breach_id),
    PRIMARY KEY (subject_id, breach_id)
);
CREATE INDEX breach_subjects_breach ON breach_subjects (breach_id);
