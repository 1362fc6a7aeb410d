-- Objections to communications (7.11): a channel and a kind (service or
-- marketing) the subject asked not to be contacted by.
CREATE TABLE contact_optouts (
    subject_id TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    request_id TEXT,
    PRIMARY KEY (subject_id, channel, kind)
);
