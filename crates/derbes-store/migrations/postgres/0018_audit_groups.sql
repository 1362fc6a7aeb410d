-- A group record: one chained record of `audit_log` that seals many
-- subjects' records which share everything but the subject and the outcome
-- (an audience's chunk of decisions). See the SQLite migration.
CREATE TABLE audit_outcomes (
    seq      BIGINT  NOT NULL,
    outcome  BIGINT  NOT NULL,
    action   TEXT    NOT NULL,
    decision TEXT    NOT NULL,
    reasons  TEXT    NOT NULL,
    PRIMARY KEY (seq, outcome)
);
CREATE TABLE audit_members (
    seq        BIGINT  NOT NULL,
    subject_id TEXT    NOT NULL,
    outcome    BIGINT  NOT NULL,
    PRIMARY KEY (seq, subject_id)
);
CREATE INDEX audit_members_subject ON audit_members (subject_id, seq);
