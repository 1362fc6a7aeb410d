-- A data subject's own door: short-lived tokens the app's backend opens
-- for its signed-in user, each scoped to that one subject. Stored as
-- SHA-256 only; deleted with the subject.
CREATE TABLE subject_sessions (
    session_id   TEXT    NOT NULL PRIMARY KEY,
    subject_id   TEXT    NOT NULL,
    token_sha256 TEXT    NOT NULL UNIQUE,
    opened_by    TEXT    NOT NULL,           -- the staff token that opened it
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX subject_sessions_subject ON subject_sessions (subject_id);
