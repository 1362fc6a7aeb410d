-- SQLite only: its audience reads consents' terms from an index of their
-- own (see the SQLite migration). PostgreSQL reads them in one aggregated
-- statement from the table, and its schema is unchanged.
SELECT 1;
