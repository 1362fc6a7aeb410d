-- The language each staff member's pages speak (the desk), chosen by them
-- and kept with their token; NULL until they choose (the page's own
-- choice, Russian by default, stands).
ALTER TABLE staff_tokens ADD COLUMN lang TEXT CHECK (lang IS NULL OR lang IN ('ru', 'kk', 'en'));
