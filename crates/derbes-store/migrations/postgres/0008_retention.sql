-- Legal holds (litigation, an authority's order): while a hold is open the
-- retention purge leaves the subject's data alone. Reasons are references,
-- never personal data.
CREATE TABLE legal_holds (
    hold_id     TEXT    NOT NULL PRIMARY KEY,
    subject_id  TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    reference   TEXT    NOT NULL,
    placed_at   BIGINT NOT NULL,
    placed_by   TEXT    NOT NULL,
    released_at BIGINT,
    released_by TEXT
);
CREATE INDEX legal_holds_subject ON legal_holds (subject_id);

-- Retention-expired history rows are found by date.
CREATE INDEX subject_field_history_keep_until ON subject_field_history (keep_until);
-- Subjects whose relationship ended are the purge's candidates.
CREATE INDEX subjects_relationship_ended ON subjects (relationship_ended_at);

-- A destroyed subject's certificate is found by subject.
CREATE INDEX destruction_certificates_subject ON destruction_certificates (subject_id);
