-- A group record: one chained record of `audit_log` that seals many
-- subjects' records which share everything but the subject and the outcome
-- (an audience's chunk of decisions). Each subject's record is a row of
-- `audit_members` naming the group's record and one of its outcomes; the
-- group record's hash covers the digest of its outcomes and members, so a
-- member changed, added or removed breaks the chain as a changed record
-- would. Readers of a subject's trail see each member as a record of its own.
CREATE TABLE audit_outcomes (
    seq      INTEGER NOT NULL,
    outcome  INTEGER NOT NULL,
    action   TEXT    NOT NULL,
    decision TEXT    NOT NULL,
    reasons  TEXT    NOT NULL,
    PRIMARY KEY (seq, outcome)
) WITHOUT ROWID;
CREATE TABLE audit_members (
    seq        INTEGER NOT NULL,
    subject_id TEXT    NOT NULL,
    outcome    INTEGER NOT NULL,
    PRIMARY KEY (seq, subject_id)
) WITHOUT ROWID;
CREATE INDEX audit_members_subject ON audit_members (subject_id, seq);
