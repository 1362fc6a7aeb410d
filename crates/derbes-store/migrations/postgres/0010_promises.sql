-- Free text that may hold personal data (a complaint in the requester's
-- words, a refusal's reason, a hold's or an obligation's reference, a
-- disclosure's legal basis, a representative's name and document) is kept
-- only here, sealed: under the subject's data key, so that it goes when the
-- subject is destroyed, or -- for a note of no subject (an anonymous
-- complaint) -- under a data key of the note's owner, kept wrapped in
-- subject_keys under the owner's id, so that key rotation covers it. The
-- plaintext columns these replace are written empty from now on.
CREATE TABLE notes (
    subject_id TEXT    NOT NULL,            -- '' for a note of no subject
    owner      TEXT    NOT NULL,            -- request:<id>, hold:<id>, obligation:<id>, disclosure:<id>, ...
    name       TEXT    NOT NULL,            -- text, reason:<state>, reference, legal_basis, ...
    sealed     BYTEA   NOT NULL,            -- AES-256-GCM, AAD = subject (or owner) + owner + name
    PRIMARY KEY (subject_id, owner, name)
);

-- Legal representatives and attorneys who act for a subject (clause 1), with
-- their authority; their name and document are notes.
CREATE TABLE representatives (
    subject_id        TEXT    NOT NULL,
    representative_id TEXT    NOT NULL,
    basis             TEXT    NOT NULL,     -- law | power_of_attorney
    valid_from        BIGINT NOT NULL,
    valid_until       BIGINT,
    created_at        BIGINT NOT NULL,
    revoked_at        BIGINT,
    PRIMARY KEY (subject_id, representative_id)
);

-- Which policy version each consent accepted, for the re-consent list (7.6).
ALTER TABLE consents ADD COLUMN policy_sha256 TEXT;
UPDATE consents SET policy_sha256 = (record::jsonb)->>'policy_sha256';
CREATE INDEX consents_policy_version ON consents (kind, policy_sha256);

-- A request names the representative who filed it, if one did.
ALTER TABLE requests ADD COLUMN representative_id TEXT;
