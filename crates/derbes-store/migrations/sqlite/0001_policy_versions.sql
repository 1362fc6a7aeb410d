-- Policy versions as published (clause 7.6): what consents refer to.
CREATE TABLE policy_versions (
    version      TEXT    NOT NULL PRIMARY KEY,
    sha256       TEXT    NOT NULL,
    published_on TEXT    NOT NULL,            -- YYYY-MM-DD, Asia/Almaty
    recorded_at  INTEGER NOT NULL,            -- unix microseconds, when derbes first saw it
    content      TEXT    NOT NULL             -- the policy file, byte for byte
);
CREATE INDEX policy_versions_recorded ON policy_versions (recorded_at);
