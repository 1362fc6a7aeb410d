-- Clause 7.7: people found to be under 18 may be barred. Only the keyed
-- blind-index digest of the IIN is kept, until their 18th birthday.
CREATE TABLE minor_bar (
    digest   BYTEA    NOT NULL PRIMARY KEY,
    until_at BIGINT NOT NULL,
    at       BIGINT NOT NULL
);
