-- An audience's facts read each subject's consents' terms from this index
-- alone (subject, consent, terms: the subjects of a chunk side by side), not
-- from one table row of ~1.5 KB a consent (the record's JSON beside them).
-- Consents stored before their terms were (schema 16) are found through the
-- second index, which holds only them.
CREATE INDEX consents_terms ON consents (subject_id, consent_id, terms) WHERE terms IS NOT NULL;
CREATE INDEX consents_without_terms ON consents (subject_id) WHERE terms IS NULL;
