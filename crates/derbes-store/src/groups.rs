//! Group records: one chained record of the audit log that seals many
//! subjects' records which share everything but the subject and the
//! outcome — an audience's chunk of decisions.
//!
//! The group record is a record of `audit_log` like any other (its own
//! action, no subject). Its members are rows of `audit_members` (the group
//! record's number, a subject, an outcome's index) and its distinct
//! outcomes rows of `audit_outcomes` (the number, the index, and the
//! action, decision and reasons each member's record carries). The group
//! record's chain hash covers the SHA-256 of its outcomes and members
//! ([`AuditGroup::digest`]), so a member or outcome changed, added or
//! removed breaks the chain at the group record exactly as a changed
//! record would, and `verify_audit` and `prove_record` read the rows back
//! to check it. A subject's trail ([`crate::Store::audit_records`] with a
//! subject) returns each member as a record of its own: the group record's
//! time, actor, role, purpose, categories and details, the member's subject,
//! the outcome's action, decision and reasons, and the group record's
//! number and hash (what proves it).
//!
//! Why: a member is ~60 bytes of two B-trees where a chained record of its
//! own was ~900 bytes of write-ahead log over four, and one hash per 4,096
//! subjects instead of one each — the audit writer's share of an audience.

use std::collections::HashMap;

use sqlx::Row;

use crate::{Backend, StoreError};

/// The action, decision and reasons a group's members' records carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupOutcome {
    pub action: String,
    /// `permit`, `deny` or `none`.
    pub decision: String,
    /// JSON array of reasons.
    pub reasons: String,
}

/// The members a group record seals: built only by [`GroupBuilder`] (at
/// least one member, each subject once, each outcome index valid) or read
/// back as stored, with their digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditGroup {
    outcomes: Vec<GroupOutcome>,
    /// Each member's subject id and outcome index, in subject-id order
    /// (64 bits, as stored: a stored index out of range cannot alias one
    /// in range).
    members: Vec<(String, u64)>,
    digest: [u8; 32],
}

impl AuditGroup {
    /// `members` sorted by subject id; the digest computed.
    fn sealed(outcomes: Vec<GroupOutcome>, mut members: Vec<(String, u64)>) -> AuditGroup {
        members.sort_unstable();
        let mut buf = Vec::with_capacity(64 + members.len() * 48);
        buf.extend_from_slice(b"derbes/audit-group/v1");
        buf.extend_from_slice(&(outcomes.len() as u64).to_be_bytes());
        for o in &outcomes {
            for f in [&o.action, &o.decision, &o.reasons] {
                crate::audit::put(&mut buf, f.as_bytes());
            }
        }
        buf.extend_from_slice(&(members.len() as u64).to_be_bytes());
        for (subject, outcome) in &members {
            crate::audit::put(&mut buf, subject.as_bytes());
            buf.extend_from_slice(&outcome.to_be_bytes());
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &buf).as_ref());
        AuditGroup {
            outcomes,
            members,
            digest,
        }
    }

    /// The SHA-256 of the outcomes (in index order) and the members (in
    /// subject-id order), which the group record's hash covers.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    pub fn outcomes(&self) -> &[GroupOutcome] {
        &self.outcomes
    }

    /// Each member's subject id and outcome index, in subject-id order.
    pub fn members(&self) -> &[(String, u64)] {
        &self.members
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Builds an [`AuditGroup`]: the members pushed one by one, their
/// outcomes stored once each.
#[derive(Debug, Default)]
pub struct GroupBuilder {
    outcomes: Vec<GroupOutcome>,
    index: HashMap<GroupOutcome, u32>,
    members: Vec<(String, u64)>,
}

impl GroupBuilder {
    pub fn with_capacity(members: usize) -> GroupBuilder {
        GroupBuilder {
            members: Vec::with_capacity(members),
            ..GroupBuilder::default()
        }
    }

    /// The index of `outcome`, stored once however many members have it.
    pub fn outcome(&mut self, outcome: GroupOutcome) -> u32 {
        match self.index.get(&outcome) {
            Some(&at) => at,
            None => {
                let at = self.outcomes.len() as u32;
                self.outcomes.push(outcome.clone());
                self.index.insert(outcome, at);
                at
            }
        }
    }

    /// A member: `subject` with the outcome [`GroupBuilder::outcome`] numbered.
    pub fn push(&mut self, subject: String, outcome: u32) {
        self.members.push((subject, u64::from(outcome)));
    }

    /// The group, `None` without members; refused if a subject was pushed
    /// twice (a subject has one record in a group) or with an outcome
    /// never numbered.
    pub fn build(self) -> Result<Option<AuditGroup>, StoreError> {
        if self.members.is_empty() {
            return Ok(None);
        }
        if self
            .members
            .iter()
            .any(|m| m.1 >= self.outcomes.len() as u64)
        {
            return Err(StoreError::Config(
                "an audit group member names no outcome".into(),
            ));
        }
        let group = AuditGroup::sealed(self.outcomes, self.members);
        if group.members.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(StoreError::Duplicate("a subject in one audit group".into()));
        }
        Ok(Some(group))
    }
}

const INSERT_OUTCOME: &str =
    "INSERT INTO audit_outcomes (seq, outcome, action, decision, reasons) VALUES ";
const INSERT_MEMBER: &str = "INSERT INTO audit_members (seq, subject_id, outcome) VALUES ";

/// Rows per `INSERT` through sqlx (5 values or 3 each: within SQLite's and
/// PostgreSQL's limits on bound values).
const ROWS_PER_INSERT: usize = 1000;

/// The appender's own SQLite connection: the group's rows under record `seq`.
pub(crate) fn insert_lite(
    conn: &rusqlite::Connection,
    seq: i64,
    g: &AuditGroup,
) -> Result<(), rusqlite::Error> {
    let mut o = conn.prepare_cached(&format!("{INSERT_OUTCOME}(?,?,?,?,?)"))?;
    for (i, x) in g.outcomes.iter().enumerate() {
        o.execute(rusqlite::params![
            seq, i as i64, x.action, x.decision, x.reasons
        ])?;
    }
    let mut m = conn.prepare_cached(&format!("{INSERT_MEMBER}(?,?,?)"))?;
    for (subject, outcome) in &g.members {
        m.execute(rusqlite::params![seq, subject, outcome])?;
    }
    Ok(())
}

/// Through sqlx (a unit of work, PostgreSQL's appender): the rows of every
/// group among `records`, the first of which is record `first`.
pub(crate) async fn insert_sqlx(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    first: i64,
    records: &[crate::NewAuditRecord],
) -> Result<(), StoreError> {
    for (seq, g) in (first..)
        .zip(records)
        .filter_map(|(s, r)| Some((s, r.group.as_deref()?)))
    {
        for (at, chunk) in (0i64..)
            .step_by(ROWS_PER_INSERT)
            .zip(g.outcomes.chunks(ROWS_PER_INSERT))
        {
            let sql = crate::subjects::multi_row_insert(backend, INSERT_OUTCOME, 5, chunk.len());
            let mut q = sqlx::query(&sql);
            for (i, x) in (at..).zip(chunk) {
                q = q
                    .bind(seq)
                    .bind(i)
                    .bind(x.action.as_str())
                    .bind(x.decision.as_str())
                    .bind(x.reasons.as_str());
            }
            q.execute(&mut *conn).await?;
        }
        for chunk in g.members.chunks(ROWS_PER_INSERT) {
            let sql = crate::subjects::multi_row_insert(backend, INSERT_MEMBER, 3, chunk.len());
            let mut q = sqlx::query(&sql);
            for (subject, outcome) in chunk {
                // Built indexes are `u32`s: they fit.
                q = q.bind(seq).bind(subject.as_str()).bind(*outcome as i64);
            }
            q.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

impl crate::Store {
    /// The numbers, among records `from..=to`, that group rows name (a
    /// group record's, or a record's that rows were added to).
    pub(crate) async fn group_seqs(
        &self,
        from: i64,
        to: i64,
    ) -> Result<std::collections::BTreeSet<i64>, StoreError> {
        let mut seqs = std::collections::BTreeSet::new();
        for table in ["audit_outcomes", "audit_members"] {
            let found: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT DISTINCT seq FROM {table} WHERE seq BETWEEN $1 AND $2"
            ))
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
            seqs.extend(found);
        }
        Ok(seqs)
    }

    /// Record `seq`'s group as stored, for computing the record's hash
    /// again: a member or outcome changed, added or removed changes the
    /// digest; a group whose rows were all removed is read as none (and
    /// the record's hash no longer matches). One group in memory at a time.
    pub(crate) async fn stored_group(&self, seq: i64) -> Result<AuditGroup, StoreError> {
        let rows = sqlx::query(
            "SELECT action, decision, reasons FROM audit_outcomes WHERE seq = $1 ORDER BY outcome",
        )
        .bind(seq)
        .fetch_all(&self.pool)
        .await?;
        let outcomes = rows
            .iter()
            .map(|r| {
                Ok(GroupOutcome {
                    action: r.try_get("action")?,
                    decision: r.try_get("decision")?,
                    reasons: r.try_get("reasons")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let rows = sqlx::query("SELECT subject_id, outcome FROM audit_members WHERE seq = $1")
            .bind(seq)
            .fetch_all(&self.pool)
            .await?;
        let members = rows
            .iter()
            .map(|r| {
                let outcome: i64 = r.try_get("outcome")?;
                // Out of range is damage: kept as stored (all its 64 bits
                // in the digest, so it aliases no index in range), and the
                // group's record no longer matches.
                Ok((r.try_get("subject_id")?, outcome as u64))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(AuditGroup::sealed(outcomes, members))
    }

    /// Group rows that name no record of the chain (after its tail `tail`,
    /// or before its first record).
    pub(crate) async fn stray_group_rows(&self, tail: i64) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM audit_members WHERE seq > $1 OR seq < 1) \
                  + (SELECT COUNT(*) FROM audit_outcomes WHERE seq > $1 OR seq < 1)",
        )
        .bind(tail)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(decision: &str) -> GroupOutcome {
        GroupOutcome {
            action: "decision".into(),
            decision: decision.into(),
            reasons: "[]".into(),
        }
    }

    #[test]
    fn a_group_is_its_members_in_any_order_and_each_change_moves_its_digest() {
        let mut a = GroupBuilder::default();
        let mut b = GroupBuilder::default();
        for (s, d) in [("s2", "deny"), ("s1", "permit"), ("s3", "deny")] {
            let o = a.outcome(outcome(d));
            a.push(s.into(), o);
        }
        for (s, d) in [("s1", "permit"), ("s3", "deny"), ("s2", "deny")] {
            let o = b.outcome(outcome(d));
            b.push(s.into(), o);
        }
        let (a, b) = (a.build().unwrap().unwrap(), b.build().unwrap().unwrap());
        // Outcomes are stored once each; the indexes differ, the records not.
        assert_eq!(a.outcomes().len(), 2);
        assert_eq!(a.members()[0].0, "s1");
        let records = |g: &AuditGroup| {
            g.members()
                .iter()
                .map(|(s, o)| (s.clone(), g.outcomes()[*o as usize].clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(records(&a), records(&b));
        // A member's outcome changed, one removed, one added: each a new digest.
        let base = a.digest();
        let mut m = a.members().to_vec();
        m[0].1 = 1 - m[0].1;
        assert_ne!(AuditGroup::sealed(a.outcomes().to_vec(), m).digest(), base);
        let m = a.members()[1..].to_vec();
        assert_ne!(AuditGroup::sealed(a.outcomes().to_vec(), m).digest(), base);
        let mut m = a.members().to_vec();
        m.push(("s4".into(), 0));
        assert_ne!(AuditGroup::sealed(a.outcomes().to_vec(), m).digest(), base);
        let mut o = a.outcomes().to_vec();
        o[0].reasons = "[{}]".into();
        assert_ne!(AuditGroup::sealed(o, a.members().to_vec()).digest(), base);
    }

    #[test]
    fn a_group_has_members_each_once() {
        assert!(GroupBuilder::default().build().unwrap().is_none());
        let mut g = GroupBuilder::default();
        let (p, d) = (g.outcome(outcome("permit")), g.outcome(outcome("deny")));
        g.push("s1".into(), p);
        g.push("s1".into(), d);
        assert!(matches!(g.build(), Err(StoreError::Duplicate(_))));
        let mut g = GroupBuilder::default();
        g.push("s1".into(), 0);
        assert!(matches!(g.build(), Err(StoreError::Config(_))));
    }
}
