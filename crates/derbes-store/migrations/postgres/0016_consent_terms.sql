-- What decisions read of a consent, as one short line beside its record
-- (derbes_core::ConsentTerms::line): deciding for an audience reads and
-- parses this instead of the record's JSON. Consents are never changed, so
-- the line is written once with the record. Rows from before this version
-- keep NULL and are read from their record.
ALTER TABLE consents ADD COLUMN terms TEXT;
