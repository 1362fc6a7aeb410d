-- Data-subject requests (7.11 and the Law), worked against deadlines in
-- Kazakh working days. No personal data: the subject is an id, details are
-- ids and codes (values to correct travel through rectification, sealed).
CREATE TABLE requests (
    request_id   TEXT    NOT NULL PRIMARY KEY,
    subject_id   TEXT,
    kind         TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    requester    TEXT    NOT NULL,
    received_at  BIGINT NOT NULL,
    due_at       BIGINT NOT NULL,
    state        TEXT    NOT NULL,
    state_reason TEXT,
    details      TEXT    NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX requests_subject ON requests (subject_id, received_at);
CREATE INDEX requests_open_due ON requests (state, due_at);

-- Every step of a request, in order.
CREATE TABLE request_events (
    request_id TEXT    NOT NULL,
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    actor      TEXT    NOT NULL,
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    reason     TEXT,
    PRIMARY KEY (request_id, seq)
);
