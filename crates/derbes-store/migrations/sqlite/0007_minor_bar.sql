-- Clause 7.7: people found to be under 18 may be barred. Only the keyed
-- blind-index digest of the IIN is kept, until their 18th birthday.
CREATE TABLE minor_bar (
    digest   BLOB    NOT NULL PRIMARY KEY,
    until_at INTEGER NOT NULL,
    at       INTEGER NOT NULL
);
