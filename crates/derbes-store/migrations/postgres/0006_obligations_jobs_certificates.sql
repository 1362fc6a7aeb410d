-- Outstanding obligations (open contracts, deals, debts): a withdrawal of
-- consent is accepted only when none is open (7.11).
CREATE TABLE obligations (
    subject_id    TEXT    NOT NULL,
    obligation_id TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    reference     TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    closed_at     BIGINT,
    PRIMARY KEY (subject_id, obligation_id)
);

-- Work derbes does itself; a job is done exactly once, in the same
-- transaction as its effect.
CREATE TABLE jobs (
    job_id     TEXT    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    subject_id TEXT    NOT NULL,
    request_id TEXT,
    due_at     BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    done_at    BIGINT,
    outcome    TEXT
);
CREATE INDEX jobs_pending ON jobs (done_at, due_at);

-- Destruction certificates (акт об уничтожении): no personal data.
CREATE TABLE destruction_certificates (
    certificate_id TEXT    NOT NULL PRIMARY KEY,
    subject_id     TEXT    NOT NULL,
    request_id     TEXT,
    at             BIGINT NOT NULL,
    content        TEXT    NOT NULL,
    sha256         TEXT    NOT NULL
);
CREATE INDEX destruction_certificates_request ON destruction_certificates (request_id);
