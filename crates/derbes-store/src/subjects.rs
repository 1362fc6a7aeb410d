//! Subjects, their sealed fields and history, their keys, blind indexes and
//! objections, and what a decision reads of them. The store never sees
//! plaintext personal data: values arrive sealed, identifiers arrive as
//! blind-index digests.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Backend, NewConsent, Store, StoreError, SubjectId, SubjectStatus, Write};

/// A field as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRow {
    pub field: String,
    pub sealed: Vec<u8>,
    pub source: String,
    pub collected_at: DateTime<Utc>,
    /// Comma-separated purpose ids.
    pub purposes: String,
    pub version: i64,
}

/// Everything a registration writes, in one transaction.
#[derive(Debug, Clone)]
pub struct NewSubject {
    pub subject_id: SubjectId,
    pub policy_version: String,
    pub created_at: DateTime<Utc>,
    pub kek_id: String,
    pub wrapped_key: Vec<u8>,
    pub fields: Vec<FieldRow>,
    /// (kind, digest) pairs: `iin`, `phone`.
    pub index: Vec<(String, Vec<u8>)>,
    pub consents: Vec<NewConsent>,
}

/// A consent as decisions read it: its terms line
/// (`derbes_core::ConsentTerms::line`), or its record's JSON when it was
/// stored before terms were, and its withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactsConsent {
    pub terms: String,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// What [`Store::subject_facts`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectFactsRows {
    pub subject: SubjectRow,
    pub consents: Vec<FactsConsent>,
    /// `(channel, kind)` of each objection.
    pub objections: Vec<(String, String)>,
    /// A legal hold is open.
    pub held: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRow {
    pub subject_id: SubjectId,
    pub status: SubjectStatus,
    pub created_at: DateTime<Utc>,
    pub policy_version: String,
    pub destroyed_at: Option<DateTime<Utc>>,
    pub relationship_ended_at: Option<DateTime<Utc>>,
}

/// One objection to contact (5.2 of the policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptoutRow {
    pub channel: String,
    pub kind: String,
    pub at: DateTime<Utc>,
    /// The request that recorded it, if one did.
    pub request_id: Option<String>,
}

/// A previous value of a field, sealed, with why it was replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldHistoryRow {
    pub version: i64,
    pub sealed: Vec<u8>,
    pub sealed_reason: Vec<u8>,
    pub replaced_at: DateTime<Utc>,
    pub keep_until: DateTime<Utc>,
}

/// How many subjects stand where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectCounts {
    pub active: i64,
    pub destroyed: i64,
}

/// A subject's data key, wrapped under a key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub kek_id: String,
    pub wrapped: Vec<u8>,
}

/// One rectified field: the new value and the old one moved to history.
#[derive(Debug, Clone)]
pub struct Rectification {
    pub new: FieldRow,
    /// The version the caller read; the update fails if it changed meanwhile.
    pub expected_version: Option<i64>,
    pub sealed_reason: Vec<u8>,
    pub keep_until: DateTime<Utc>,
}

fn field_row(r: &AnyRow) -> Result<FieldRow, StoreError> {
    Ok(FieldRow {
        field: r.try_get("field")?,
        sealed: r.try_get("sealed")?,
        source: r.try_get("source")?,
        collected_at: crate::time(r, "collected_at")?,
        purposes: r.try_get("purposes")?,
        version: r.try_get("version")?,
    })
}

impl Store {
    async fn index_owner(
        tx: &mut Transaction<'static, Any>,
        kind: &str,
        digest: &[u8],
    ) -> Result<Option<SubjectId>, StoreError> {
        let row = sqlx::query("SELECT subject_id FROM blind_index WHERE kind = $1 AND digest = $2")
            .bind(kind)
            .bind(digest)
            .fetch_optional(&mut **tx)
            .await?;
        row.map(|r| crate::subject_id(&r, "subject_id")).transpose()
    }

    async fn insert_field(
        tx: &mut Transaction<'static, Any>,
        subject: SubjectId,
        f: &FieldRow,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO subject_fields (subject_id, field, sealed, source, collected_at, purposes, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(subject.to_string())
        .bind(&f.field)
        .bind(&f.sealed)
        .bind(&f.source)
        .bind(crate::us(f.collected_at))
        .bind(&f.purposes)
        .bind(f.version)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The subject an identifier's digest belongs to.
    pub async fn lookup(&self, kind: &str, digest: &[u8]) -> Result<Option<SubjectId>, StoreError> {
        let row = sqlx::query("SELECT subject_id FROM blind_index WHERE kind = $1 AND digest = $2")
            .bind(kind)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| crate::subject_id(&r, "subject_id")).transpose()
    }

    pub async fn subject(&self, subject_id: SubjectId) -> Result<Option<SubjectRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUBJECT_COLUMNS} FROM subjects WHERE subject_id = $1"
        ))
        .bind(subject_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(subject_row(&r)?)),
        }
    }

    /// What a decision needs of a subject, in one round trip: the subject,
    /// every consent with its withdrawal, the objections (channel, kind) and
    /// whether a legal hold is open.
    pub async fn subject_facts(
        &self,
        subject_id: SubjectId,
    ) -> Result<Option<SubjectFactsRows>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.subject_id, s.status, s.created_at, s.policy_version, s.destroyed_at, s.relationship_ended_at, \
                    x.t, x.a, x.b, x.w, x.o \
             FROM subjects s LEFT JOIN ( \
                 SELECT 'c' AS t, c.consent_id AS a, COALESCE(c.terms, c.record) AS b, w.withdrawn_at AS w, c.given_at AS o \
                   FROM consents c LEFT JOIN consent_withdrawals w \
                     ON w.subject_id = c.subject_id AND w.consent_id = c.consent_id \
                  WHERE c.subject_id = $1 \
                 UNION ALL SELECT 'o', channel, kind, NULL, 0 FROM contact_optouts WHERE subject_id = $1 \
                 UNION ALL SELECT 'h', hold_id, NULL, NULL, 0 FROM legal_holds \
                  WHERE subject_id = $1 AND released_at IS NULL \
             ) x ON 1 = 1 \
             WHERE s.subject_id = $1 ORDER BY x.t, x.o, x.a",
        )
        .bind(subject_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut out = SubjectFactsRows {
            subject: SubjectRow {
                subject_id: crate::subject_id(first, "subject_id")?,
                status: crate::subject_status(first, "status")?,
                created_at: crate::time(first, "created_at")?,
                policy_version: first.try_get("policy_version")?,
                destroyed_at: crate::time_opt(first, "destroyed_at")?,
                relationship_ended_at: crate::time_opt(first, "relationship_ended_at")?,
            },
            consents: Vec::new(),
            objections: Vec::new(),
            held: false,
        };
        for r in &rows {
            let t: Option<String> = r.try_get("t")?;
            match t.as_deref() {
                Some("c") => out.consents.push(FactsConsent {
                    terms: r.try_get("b")?,
                    withdrawn_at: crate::time_opt(r, "w")?,
                }),
                Some("o") => out.objections.push((r.try_get("a")?, r.try_get("b")?)),
                Some("h") => out.held = true,
                _ => {}
            }
        }
        Ok(Some(out))
    }

    /// What decisions read of many subjects at once (an audience), in
    /// statements of 4,096 ids each bound as one JSON array; ids that name
    /// no subject are left out, and the answer follows `ids`' order.
    ///
    /// On SQLite a connection of the store's own reads the subjects, then
    /// their consents, objections and open holds, as rows in one read
    /// transaction (one snapshot), each value read in place. On
    /// PostgreSQL one statement answers four rows (subjects, consents'
    /// terms, objections, holds), each every id's lines joined by
    /// newlines, so thousands of subjects cost four rows to the driver
    /// rather than three per subject.
    pub async fn subjects_facts(
        &self,
        ids: &[SubjectId],
    ) -> Result<Vec<SubjectFactsRows>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(FACTS_PER_STATEMENT) {
            // Each id once: the statements read what each id in the list names.
            let mut seen = std::collections::HashSet::with_capacity(chunk.len());
            let unique: Vec<SubjectId> =
                chunk.iter().copied().filter(|s| seen.insert(*s)).collect();
            let list = id_list(&unique);
            let n = unique.len();
            let mut found = match self.backend() {
                Backend::Sqlite => {
                    self.on_lite(move |conn| {
                        crate::lite::read_snapshot(conn, |conn| lite_facts(conn, &list, n))
                    })
                    .await?
                }
                Backend::Postgres => {
                    let sql = pg_facts_statement();
                    let rows = sqlx::query(&sql).bind(list).fetch_all(&self.pool).await?;
                    let mut found = std::collections::HashMap::with_capacity(chunk.len());
                    let mut kinds = Vec::with_capacity(rows.len());
                    for r in &rows {
                        let t: String = r.try_get("t")?;
                        let v: Option<String> = r.try_get("v")?;
                        kinds.push((t, v.unwrap_or_default()));
                    }
                    // The subjects' row first, whatever order the rows
                    // came in: what hangs on a subject is kept only for a
                    // subject found.
                    kinds.sort_by_key(|(t, _)| t != "s");
                    for (t, v) in &kinds {
                        for line in v.split('\n').filter(|l| !l.is_empty()) {
                            facts_line(t, line, &mut found)?;
                        }
                    }
                    found
                }
            };
            out.extend(chunk.iter().filter_map(|id| found.remove(id)));
        }
        Ok(out)
    }

    /// Active subjects' ids after `after` (in id order), at most `limit`.
    pub async fn active_subject_ids(
        &self,
        after: Option<SubjectId>,
        limit: i64,
    ) -> Result<Vec<SubjectId>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id FROM subjects WHERE status = 'active' AND subject_id > $1 ORDER BY subject_id LIMIT $2",
        )
        .bind(after.map(|s| s.to_string()).unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| crate::subject_id(r, "subject_id"))
            .collect()
    }

    /// A subject's objections.
    pub async fn optouts(&self, subject_id: SubjectId) -> Result<Vec<OptoutRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, kind, at, request_id FROM contact_optouts WHERE subject_id = $1 ORDER BY channel, kind",
        )
        .bind(subject_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OptoutRow {
                    channel: r.try_get("channel")?,
                    kind: r.try_get("kind")?,
                    at: crate::time(r, "at")?,
                    request_id: r.try_get("request_id")?,
                })
            })
            .collect()
    }

    /// The subject's wrapped data key.
    pub async fn subject_key(&self, owner: &str) -> Result<Option<WrappedKey>, StoreError> {
        let row = sqlx::query("SELECT kek_id, wrapped FROM subject_keys WHERE subject_id = $1")
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(WrappedKey {
                kek_id: r.try_get("kek_id")?,
                wrapped: r.try_get("wrapped")?,
            })),
        }
    }

    pub async fn subject_fields(&self, subject_id: SubjectId) -> Result<Vec<FieldRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT field, sealed, source, collected_at, purposes, version FROM subject_fields \
             WHERE subject_id = $1 ORDER BY field",
        )
        .bind(subject_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(field_row).collect()
    }

    /// Previous values of a field, newest first.
    pub async fn field_history(
        &self,
        subject_id: SubjectId,
        field: &str,
    ) -> Result<Vec<FieldHistoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, sealed, sealed_reason, replaced_at, keep_until FROM subject_field_history \
             WHERE subject_id = $1 AND field = $2 ORDER BY version DESC",
        )
        .bind(subject_id.to_string())
        .bind(field)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FieldHistoryRow {
                    version: r.try_get("version")?,
                    sealed: r.try_get("sealed")?,
                    sealed_reason: r.try_get("sealed_reason")?,
                    replaced_at: crate::time(r, "replaced_at")?,
                    keep_until: crate::time(r, "keep_until")?,
                })
            })
            .collect()
    }

    pub async fn subject_count(&self) -> Result<SubjectCounts, StoreError> {
        let r = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END), 0) AS a, \
             COALESCE(SUM(CASE WHEN status = 'destroyed' THEN 1 ELSE 0 END), 0) AS d FROM subjects",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(SubjectCounts {
            active: r.try_get("a")?,
            destroyed: r.try_get("d")?,
        })
    }
}

const SUBJECT_COLUMNS: &str =
    "subject_id, status, created_at, policy_version, destroyed_at, relationship_ended_at";

/// Ids per [`Store::subjects_facts`] statement.
const FACTS_PER_STATEMENT: usize = 4096;

/// An audience's ids as one JSON array, bound once per statement. Ids are
/// uuids: nothing in them needs escaping.
fn id_list(ids: &[SubjectId]) -> String {
    let mut list = String::with_capacity(ids.len() * 39 + 2);
    list.push('[');
    for (i, id) in ids.iter().enumerate() {
        list.push_str(if i > 0 { ",\"" } else { "\"" });
        list.push_str(&id.to_string());
        list.push('"');
    }
    list.push(']');
    list
}

/// PostgreSQL's audience facts statement: the ids bound once, as one JSON
/// array, then four aggregated rows `(t, v)`; every line of `v` starts
/// with the subject's id and a space. `s`: `status created_at
/// destroyed_at|- ended_at|- policy_version`; `c`: `withdrawn_at|- ` and
/// the consent's terms line (its record, from before terms were stored);
/// `o`: `channel kind`; `h`: the subject alone (an open legal hold). One
/// statement text whatever the count, so each connection prepares it once.
fn pg_facts_statement() -> String {
    let ids = crate::json_values(Backend::Postgres, 1);
    let text = |c: &str| format!("COALESCE(CAST({c} AS TEXT), '-')");
    format!(
        "WITH ids (id) AS ({ids}) \
         SELECT 's' AS t, string_agg(s.subject_id || ' ' || s.status || ' ' || CAST(s.created_at AS TEXT) || ' ' \
             || {destroyed} || ' ' || {ended} || ' ' || s.policy_version, chr(10)) AS v \
           FROM subjects s WHERE s.subject_id IN (SELECT id FROM ids) \
         UNION ALL SELECT 'c', string_agg(c.subject_id || ' ' || {withdrawn} || ' ' || COALESCE(c.terms, c.record), chr(10)) \
           FROM consents c LEFT JOIN consent_withdrawals w \
             ON w.subject_id = c.subject_id AND w.consent_id = c.consent_id \
          WHERE c.subject_id IN (SELECT id FROM ids) \
         UNION ALL SELECT 'o', string_agg(subject_id || ' ' || channel || ' ' || kind, chr(10)) \
           FROM contact_optouts WHERE subject_id IN (SELECT id FROM ids) \
         UNION ALL SELECT 'h', string_agg(subject_id, chr(10)) FROM (SELECT DISTINCT subject_id FROM legal_holds \
          WHERE released_at IS NULL AND subject_id IN (SELECT id FROM ids)) held",
        destroyed = text("s.destroyed_at"),
        ended = text("s.relationship_ended_at"),
        withdrawn = text("w.withdrawn_at"),
    )
}

/// The ids of SQLite's audience facts statements (`?1`: a JSON array),
/// joined to what is read of them: `CROSS JOIN` keeps the ids the outer
/// loop, each looked up by index, with no temporary table of the ids.
const LITE_IDS: &str = "json_each(?1) AS j CROSS JOIN";

/// SQLite's audience facts, read on a connection of the store's own: the
/// subjects first, then what hangs on them — their consents' terms with
/// the withdrawals, objections, open holds (kept for the subjects found) —
/// each a plain row whose values are read in place. `n`: the ids listed
/// (the most subjects found).
fn lite_facts(
    conn: &rusqlite::Connection,
    ids: &str,
    n: usize,
) -> Result<std::collections::HashMap<SubjectId, SubjectFactsRows>, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("an audience facts row of {what}"));
    let text = |r: &rusqlite::Row<'_>, i: usize, what: &str| -> Result<String, StoreError> {
        r.get_ref(i)?
            .as_str()
            .map(str::to_string)
            .map_err(|_| bad(what))
    };
    let time = |r: &rusqlite::Row<'_>, i: usize, what: &str| match r
        .get_ref(i)?
        .as_i64_or_null()
        .map_err(|_| bad(what))?
    {
        None => Ok(None),
        Some(us) => crate::decode::from_us(us, what).map(Some),
    };
    let id = |r: &rusqlite::Row<'_>, what: &str| -> Result<SubjectId, StoreError> {
        let s = r.get_ref(0)?.as_str().map_err(|_| bad(what))?;
        SubjectId::parse(s).map_err(|_| bad(what))
    };
    // Each row of a statement over the ids, in turn.
    let each = |sql: &str, f: &mut dyn FnMut(&rusqlite::Row<'_>) -> Result<(), StoreError>| {
        let mut q = conn.prepare_cached(sql)?;
        let mut rows = q.query([ids])?;
        while let Some(r) = rows.next()? {
            f(r)?;
        }
        Ok::<_, StoreError>(())
    };
    let mut found = std::collections::HashMap::with_capacity(n);
    each(
        &format!(
            "SELECT s.subject_id, s.status, s.created_at, s.destroyed_at, s.relationship_ended_at, \
                    s.policy_version FROM {LITE_IDS} subjects s ON s.subject_id = j.value"
        ),
        &mut |r| {
            let subject = SubjectRow {
                subject_id: id(r, "subjects")?,
                status: SubjectStatus::parse(r.get_ref(1)?.as_str().map_err(|_| bad("subjects"))?)
                    .ok_or_else(|| bad("subjects"))?,
                created_at: time(r, 2, "subjects")?.ok_or_else(|| bad("subjects"))?,
                destroyed_at: time(r, 3, "subjects")?,
                relationship_ended_at: time(r, 4, "subjects")?,
                policy_version: text(r, 5, "subjects")?,
            };
            let rows = SubjectFactsRows {
                subject,
                consents: Vec::new(),
                objections: Vec::new(),
                held: false,
            };
            found.insert(rows.subject.subject_id, rows);
            Ok(())
        },
    )?;
    // Consents' terms lines from their index alone; then those stored
    // before lines were, by their records (schema 17's two indexes).
    for (index, terms, read) in [
        ("consents_terms", "IS NOT NULL", "c.terms"),
        ("consents_without_terms", "IS NULL", "c.record"),
    ] {
        each(
            &format!(
                "SELECT c.subject_id, w.withdrawn_at, {read} \
                   FROM {LITE_IDS} consents c INDEXED BY {index} \
                     ON c.subject_id = j.value AND c.terms {terms} \
                   LEFT JOIN consent_withdrawals w \
                     ON w.subject_id = c.subject_id AND w.consent_id = c.consent_id"
            ),
            &mut |r| {
                if let Some(f) = found.get_mut(&id(r, "consents")?) {
                    f.consents.push(FactsConsent {
                        withdrawn_at: time(r, 1, "consents")?,
                        terms: text(r, 2, "consents")?,
                    });
                }
                Ok(())
            },
        )?;
    }
    each(
        &format!(
            "SELECT o.subject_id, o.channel, o.kind \
               FROM {LITE_IDS} contact_optouts o ON o.subject_id = j.value"
        ),
        &mut |r| {
            if let Some(f) = found.get_mut(&id(r, "objections")?) {
                let objection = (text(r, 1, "objections")?, text(r, 2, "objections")?);
                f.objections.push(objection);
            }
            Ok(())
        },
    )?;
    each(
        &format!(
            "SELECT h.subject_id FROM {LITE_IDS} legal_holds h ON h.subject_id = j.value \
              WHERE h.released_at IS NULL"
        ),
        &mut |r| {
            if let Some(f) = found.get_mut(&id(r, "holds")?) {
                f.held = true;
            }
            Ok(())
        },
    )?;
    Ok(found)
}

/// One line of a [`pg_facts_statement`] row into `found`.
fn facts_line(
    t: &str,
    line: &str,
    found: &mut std::collections::HashMap<SubjectId, SubjectFactsRows>,
) -> Result<(), StoreError> {
    let bad = || StoreError::Corrupt(format!("an audience facts row of kind {t}"));
    let (id, rest) = line.split_once(' ').unwrap_or((line, ""));
    let id = SubjectId::parse(id).map_err(|_| bad())?;
    let time = |w: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        match w {
            "-" => Ok(None),
            w => w
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .map(Some)
                .ok_or_else(bad),
        }
    };
    if t == "s" {
        let w: Vec<&str> = rest.splitn(5, ' ').collect();
        let [status, created, destroyed, ended, version] = w[..] else {
            return Err(bad());
        };
        let subject = SubjectRow {
            subject_id: id,
            status: SubjectStatus::parse(status).ok_or_else(bad)?,
            created_at: time(created)?.ok_or_else(bad)?,
            policy_version: version.to_string(),
            destroyed_at: time(destroyed)?,
            relationship_ended_at: time(ended)?,
        };
        found.insert(
            id,
            SubjectFactsRows {
                subject,
                consents: Vec::new(),
                objections: Vec::new(),
                held: false,
            },
        );
        return Ok(());
    }
    // Subjects come first in the statement's answer.
    let Some(f) = found.get_mut(&id) else {
        return Ok(());
    };
    match t {
        "c" => {
            let (withdrawn, terms) = rest.split_once(' ').ok_or_else(bad)?;
            f.consents.push(FactsConsent {
                terms: terms.to_string(),
                withdrawn_at: time(withdrawn)?,
            });
        }
        "o" => {
            let (channel, kind) = rest.split_once(' ').ok_or_else(bad)?;
            f.objections.push((channel.to_string(), kind.to_string()));
        }
        "h" => f.held = true,
        _ => return Err(bad()),
    }
    Ok(())
}

fn subject_row(r: &AnyRow) -> Result<SubjectRow, StoreError> {
    Ok(SubjectRow {
        subject_id: crate::subject_id(r, "subject_id")?,
        status: crate::subject_status(r, "status")?,
        created_at: crate::time(r, "created_at")?,
        policy_version: r.try_get("policy_version")?,
        destroyed_at: crate::time_opt(r, "destroyed_at")?,
        relationship_ended_at: crate::time_opt(r, "relationship_ended_at")?,
    })
}

/// Bound values per multi-row statement: under SQLite's 32,766 and
/// PostgreSQL's 65,535.
pub(crate) const VALUES_PER_STATEMENT: usize = 30_000;

/// `prefix (($1, ..., $cols), ($cols+1, ...), ...)` for `rows` rows.
pub(crate) fn multi_row_insert(
    backend: crate::Backend,
    prefix: &str,
    cols: usize,
    rows: usize,
) -> String {
    let mut sql = String::with_capacity(prefix.len() + rows * cols * 5);
    sql.push_str(prefix);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&crate::bound(backend, r * cols + 1, cols));
        sql.push(')');
    }
    sql
}

/// The identifiers a batch wrote: (subject id, kind).
type Written = HashSet<(String, String)>;

/// The statements of a registration's rows, their values appended per
/// driver (sqlx: one multi-row statement a table; rusqlite: a prepared
/// single-row statement stepped per row).
const INSERT_INDEX: &str = "INSERT INTO blind_index (kind, digest, subject_id) VALUES ";
const DELETE_INDEX: &str = "DELETE FROM blind_index WHERE subject_id";
const INSERT_SUBJECT: &str =
    "INSERT INTO subjects (subject_id, status, created_at, policy_version) VALUES ";
const INSERT_KEY: &str =
    "INSERT INTO subject_keys (subject_id, kek_id, wrapped, created_at) VALUES ";
const INSERT_FIELD: &str = "INSERT INTO subject_fields (subject_id, field, sealed, source, collected_at, purposes, version) VALUES ";
const INSERT_CONSENT: &str = "INSERT INTO consents (subject_id, consent_id, kind, given_at, expires_at, record, receipt_sha256, policy_sha256, terms) VALUES ";

/// The subjects of a batch with an identifier not written (someone
/// registered before has it, or someone earlier in the batch): their
/// positions and the first such kind. Their identifiers that were written
/// are removed again.
fn skipped_of(subjects: &[NewSubject], written: &Written) -> Vec<(usize, String)> {
    let mut skipped = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        let id = s.subject_id.to_string();
        if let Some((kind, _)) = s
            .index
            .iter()
            .find(|(k, _)| !written.contains(&(id.clone(), k.clone())))
        {
            skipped.push((i, kind.clone()));
        }
    }
    skipped
}

/// The items of a batch (its subjects, or their records) at the positions
/// not skipped.
pub(crate) fn kept_of<'a, T>(items: &'a [T], skipped: &[(usize, String)]) -> Vec<&'a T> {
    let skip: HashSet<usize> = skipped.iter().map(|(i, _)| *i).collect();
    items
        .iter()
        .enumerate()
        .filter(|(i, _)| !skip.contains(i))
        .map(|(_, s)| s)
        .collect()
}

/// SQLite, on a connection of the store's own inside a transaction holding
/// the write lock: what [`Write::insert_new_subjects`] does, in the same
/// order with the same outcome, a prepared single-row statement stepped per
/// row with its values bound in place (an import's batch writes ~100,000
/// rows; through sqlx each value was copied into the driver's arguments
/// and each statement crossed to its connection's thread).
pub(crate) fn lite_insert_new_subjects(
    conn: &rusqlite::Connection,
    subjects: &[NewSubject],
) -> Result<Vec<(usize, String)>, StoreError> {
    let mut keks: Vec<&str> = subjects.iter().map(|s| s.kek_id.as_str()).collect();
    keks.dedup();
    for kek in keks {
        crate::keys::lite_require_active_kek(conn, kek)?;
    }
    let mut written: Written = HashSet::with_capacity(subjects.len() * 2);
    let mut index = conn.prepare_cached(&format!(
        "{INSERT_INDEX}(?1, ?2, ?3) ON CONFLICT (kind, digest) DO NOTHING"
    ))?;
    for s in subjects {
        let id = s.subject_id.to_string();
        for (kind, digest) in &s.index {
            if index.execute(rusqlite::params![kind, digest, id])? == 1 {
                written.insert((id.clone(), kind.clone()));
            }
        }
    }
    let skipped = skipped_of(subjects, &written);
    let mut delete = conn.prepare_cached(&format!("{DELETE_INDEX} = ?1"))?;
    for (i, _) in &skipped {
        delete.execute([subjects[*i].subject_id.to_string()])?;
    }
    let mut subject = conn.prepare_cached(&format!("{INSERT_SUBJECT}(?1, 'active', ?2, ?3)"))?;
    let mut key = conn.prepare_cached(&format!("{INSERT_KEY}(?1, ?2, ?3, ?4)"))?;
    let mut field = conn.prepare_cached(&format!("{INSERT_FIELD}(?1, ?2, ?3, ?4, ?5, ?6, ?7)"))?;
    let mut consent = conn.prepare_cached(&format!(
        "{INSERT_CONSENT}(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?;
    for s in kept_of(subjects, &skipped) {
        let id = s.subject_id.to_string();
        let created = crate::us(s.created_at);
        subject.execute(rusqlite::params![id, created, s.policy_version])?;
        key.execute(rusqlite::params![id, s.kek_id, s.wrapped_key, created])?;
        for f in &s.fields {
            field.execute(rusqlite::params![
                id,
                f.field,
                f.sealed,
                f.source,
                crate::us(f.collected_at),
                f.purposes,
                f.version
            ])?;
        }
        for c in &s.consents {
            consent.execute(rusqlite::params![
                id,
                c.consent_id,
                c.kind,
                crate::us(c.given_at),
                c.expires_at.map(crate::us),
                c.record_json,
                c.receipt_sha256,
                c.policy_sha256,
                c.terms
            ])?;
        }
    }
    Ok(skipped)
}

/// A unique violation becomes [`StoreError::Duplicate`]; anything else stays.
pub(crate) fn duplicate_or(e: sqlx::Error, kind: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Duplicate(kind.to_string())
        }
        _ => StoreError::Database(e),
    }
}

impl Store {}

impl Write {
    /// Register a subject: the subject, its wrapped key, sealed fields, blind
    /// indexes and consents, all or nothing. An identifier already indexed
    /// is refused as [`StoreError::Duplicate`].
    pub async fn insert_subject(&mut self, s: &NewSubject) -> Result<(), StoreError> {
        self.insert_subjects(std::slice::from_ref(s)).await
    }

    /// Register subjects (a registration is one, an import's batch many),
    /// all or nothing, in a few multi-row inserts per table whatever their
    /// number. An identifier already indexed (or given twice) is refused as
    /// [`StoreError::Duplicate`] naming its kind.
    pub async fn insert_subjects(&mut self, subjects: &[NewSubject]) -> Result<(), StoreError> {
        match self.insert_new_subjects(subjects).await?.first() {
            None => Ok(()),
            Some((_, kind)) => Err(StoreError::Duplicate(kind.clone())),
        }
    }

    /// Register the subjects whose identifiers nobody has yet, and skip the
    /// others: their positions in `subjects` and the kind taken (by someone
    /// registered before, or earlier in the batch). The unique index
    /// decides, in the same statements that write it: no separate check
    /// that another writer could overtake.
    pub async fn insert_new_subjects(
        &mut self,
        subjects: &[NewSubject],
    ) -> Result<Vec<(usize, String)>, StoreError> {
        let mut keks: Vec<&str> = subjects.iter().map(|s| s.kek_id.as_str()).collect();
        keks.dedup();
        for kek in keks {
            self.require_active_kek(kek).await?;
        }
        let backend = self.backend();
        let tx = self.tx();
        let index: Vec<(&NewSubject, &String, &Vec<u8>)> = subjects
            .iter()
            .flat_map(|s| s.index.iter().map(move |(k, d)| (s, k, d)))
            .collect();
        let mut written: Written = HashSet::with_capacity(index.len());
        for chunk in index.chunks(VALUES_PER_STATEMENT / 3) {
            let sql = multi_row_insert(backend, INSERT_INDEX, 3, chunk.len())
                + " ON CONFLICT (kind, digest) DO NOTHING RETURNING subject_id, kind";
            let mut q = sqlx::query(&sql);
            for (s, kind, digest) in chunk {
                q = q.bind(*kind).bind(*digest).bind(s.subject_id.to_string());
            }
            for r in q
                .fetch_all(&mut **tx)
                .await
                .map_err(|e| duplicate_or(e, "index"))?
            {
                written.insert((r.try_get("subject_id")?, r.try_get("kind")?));
            }
        }
        let skipped = skipped_of(subjects, &written);
        for chunk in skipped.chunks(500) {
            let list = crate::bound(backend, 1, chunk.len());
            let sql = format!("{DELETE_INDEX} IN ({list})");
            let mut q = sqlx::query(&sql);
            for (i, _) in chunk {
                q = q.bind(subjects[*i].subject_id.to_string());
            }
            q.execute(&mut **tx).await?;
        }
        let subjects = kept_of(subjects, &skipped);
        for chunk in subjects.chunks(VALUES_PER_STATEMENT / 4) {
            let sql = multi_row_insert(backend, INSERT_SUBJECT, 4, chunk.len());
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q
                    .bind(s.subject_id.to_string())
                    .bind("active")
                    .bind(crate::us(s.created_at))
                    .bind(&s.policy_version);
            }
            q.execute(&mut **tx).await?;
            let sql = multi_row_insert(backend, INSERT_KEY, 4, chunk.len());
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q
                    .bind(s.subject_id.to_string())
                    .bind(&s.kek_id)
                    .bind(&s.wrapped_key)
                    .bind(crate::us(s.created_at));
            }
            q.execute(&mut **tx).await?;
        }
        let fields: Vec<(&NewSubject, &FieldRow)> = subjects
            .iter()
            .copied()
            .flat_map(|s| s.fields.iter().map(move |f| (s, f)))
            .collect();
        for chunk in fields.chunks(VALUES_PER_STATEMENT / 7) {
            let sql = multi_row_insert(backend, INSERT_FIELD, 7, chunk.len());
            let mut q = sqlx::query(&sql);
            for (s, f) in chunk {
                q = q
                    .bind(s.subject_id.to_string())
                    .bind(&f.field)
                    .bind(&f.sealed)
                    .bind(&f.source)
                    .bind(crate::us(f.collected_at))
                    .bind(&f.purposes)
                    .bind(f.version);
            }
            q.execute(&mut **tx).await?;
        }
        let consents: Vec<(&NewSubject, &NewConsent)> = subjects
            .iter()
            .copied()
            .flat_map(|s| s.consents.iter().map(move |c| (s, c)))
            .collect();
        for chunk in consents.chunks(VALUES_PER_STATEMENT / 9) {
            let sql = multi_row_insert(backend, INSERT_CONSENT, 9, chunk.len());
            let mut q = sqlx::query(&sql);
            for (s, c) in chunk {
                q = q
                    .bind(s.subject_id.to_string())
                    .bind(&c.consent_id)
                    .bind(&c.kind)
                    .bind(crate::us(c.given_at))
                    .bind(c.expires_at.map(crate::us))
                    .bind(&c.record_json)
                    .bind(&c.receipt_sha256)
                    .bind(&c.policy_sha256)
                    .bind(&c.terms);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(skipped)
    }

    /// Change a subject's status if it is `from` (compare-and-swap); returns
    /// whether it changed. `ends_relationship` stamps `relationship_ended_at`.
    pub async fn set_subject_status(
        &mut self,
        subject_id: SubjectId,
        from: SubjectStatus,
        to: SubjectStatus,
        at: DateTime<Utc>,
        ends_relationship: bool,
    ) -> Result<bool, StoreError> {
        let sql = if ends_relationship {
            "UPDATE subjects SET status = $1, relationship_ended_at = COALESCE(relationship_ended_at, $2) WHERE subject_id = $3 AND status = $4"
        } else {
            "UPDATE subjects SET status = $1 WHERE subject_id = $3 AND status = $4 AND $2 = $2"
        };
        let n = sqlx::query(sql)
            .bind(to.as_str())
            .bind(crate::us(at))
            .bind(subject_id.to_string())
            .bind(from.as_str())
            .execute(self.conn())
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Record objections: `(channel, kind)` pairs; existing ones are kept.
    pub async fn add_optouts(
        &mut self,
        subject_id: SubjectId,
        pairs: &[(String, String)],
        at: DateTime<Utc>,
        request_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        for (channel, kind) in pairs {
            sqlx::query(
                "INSERT INTO contact_optouts (subject_id, channel, kind, at, request_id) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (subject_id, channel, kind) DO NOTHING",
            )
            .bind(subject_id.to_string())
            .bind(channel)
            .bind(kind)
            .bind(crate::us(at))
            .bind(request_id)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Apply rectifications in one transaction: each old value moves to the
    /// history, the new one replaces it; blind indexes follow (`index`: kind,
    /// new digest). Fails with [`StoreError::Conflict`] if a field changed
    /// since it was read, [`StoreError::Duplicate`] if an identifier is taken.
    pub async fn rectify(
        &mut self,
        subject_id: SubjectId,
        changes: &[Rectification],
        index: &[(String, Vec<u8>)],
        replaced_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        for (kind, digest) in index {
            match Store::index_owner(tx, kind, digest).await? {
                Some(owner) if owner != subject_id => {
                    return Err(StoreError::Duplicate(kind.clone()))
                }
                _ => {}
            }
            sqlx::query("DELETE FROM blind_index WHERE kind = $1 AND subject_id = $2")
                .bind(kind)
                .bind(subject_id.to_string())
                .execute(&mut **tx)
                .await?;
            sqlx::query("INSERT INTO blind_index (kind, digest, subject_id) VALUES ($1, $2, $3)")
                .bind(kind)
                .bind(digest)
                .bind(subject_id.to_string())
                .execute(&mut **tx)
                .await
                .map_err(|e| duplicate_or(e, kind))?;
        }
        for c in changes {
            let old = sqlx::query(
                "SELECT field, sealed, source, collected_at, purposes, version FROM subject_fields \
                 WHERE subject_id = $1 AND field = $2",
            )
            .bind(subject_id.to_string())
            .bind(&c.new.field)
            .fetch_optional(&mut **tx)
            .await?;
            let old = match old {
                Some(r) => Some(field_row(&r)?),
                None => None,
            };
            if old.as_ref().map(|o| o.version) != c.expected_version {
                return Err(StoreError::Conflict(c.new.field.clone()));
            }
            if let Some(o) = old {
                sqlx::query(
                    "INSERT INTO subject_field_history (subject_id, field, version, sealed, source, collected_at, \
                     replaced_at, sealed_reason, keep_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(subject_id.to_string())
                .bind(&o.field)
                .bind(o.version)
                .bind(&o.sealed)
                .bind(&o.source)
                .bind(crate::us(o.collected_at))
                .bind(crate::us(replaced_at))
                .bind(&c.sealed_reason)
                .bind(crate::us(c.keep_until))
                .execute(&mut **tx)
                .await?;
                sqlx::query("DELETE FROM subject_fields WHERE subject_id = $1 AND field = $2")
                    .bind(subject_id.to_string())
                    .bind(&o.field)
                    .execute(&mut **tx)
                    .await?;
            }
            Store::insert_field(tx, subject_id, &c.new).await?;
        }
        Ok(())
    }
}
