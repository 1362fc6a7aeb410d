//! Bringing in an existing user base (`derbes import FILE`): every line is
//! validated exactly as a registration is (the same form, types, age gate,
//! citizenship and consents, each consent to the published version the
//! person accepted, given when they gave it), then registered in batches —
//! one transaction per batch that also advances the import's checkpoint, so
//! an interrupted import resumes after its last committed line and nobody
//! is registered twice. Refused lines are reported by number, field and
//! code, never by value.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use derbes_core::{almaty_date, validate_registration, Problem, RegistrationRequest, SubjectId};
use derbes_policy::{Capability, FieldType, LoadedPolicy};
use derbes_store::{ImportBatch, ImportProgress};
use serde::Serialize;
use serde_json::Value;

use crate::audit::Record;
use crate::subjects::Prepared;
use crate::{Actor, Engine, EngineError};

/// One line of an import: a registration, when its data was collected, and
/// when each of its consents was given.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportLine {
    registration: RegistrationRequest,
    collected_at: Option<DateTime<Utc>>,
    given_at: Vec<DateTime<Utc>>,
}

/// A line the import refused: its number and what is wrong, never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedLine {
    pub line: u64,
    pub problems: Vec<LineProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineProblem {
    pub field: String,
    pub code: String,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// SHA-256 of the file: the import's identity (its checkpoint's key).
    pub import_id: String,
    pub dry_run: bool,
    /// Lines already done by an earlier, interrupted run of this file.
    pub resumed_after_line: u64,
    /// Lines read in this run.
    pub lines: u64,
    pub imported: u64,
    pub refused: u64,
    /// The refused lines of this run (the first 1,000).
    pub refused_lines: Vec<RefusedLine>,
    pub seconds: f64,
    pub subjects_per_second: f64,
}

/// The most refused lines a report lists (all are counted).
const MAX_LISTED: usize = 1000;

fn problems_at(prefix: &str, p: Vec<Problem>) -> Vec<LineProblem> {
    p.into_iter()
        .map(|p| LineProblem {
            field: format!("{prefix}{}", p.field),
            code: p.code.to_string(),
            reason: p.reason,
        })
        .collect()
}

fn problem(field: impl Into<String>, code: &str, reason: &str) -> LineProblem {
    LineProblem {
        field: field.into(),
        code: code.into(),
        reason: reason.into(),
    }
}

/// A time of the import (`collected_at`, `given_at`): RFC 3339, not after `now`.
fn past_time(v: &Value, field: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, LineProblem> {
    let t = v
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            problem(
                field,
                "invalid_time",
                "an RFC 3339 time is expected, e.g. 2024-05-01T10:00:00+05:00",
            )
        })?;
    if t > now {
        return Err(problem(field, "in_the_future", "cannot be later than now"));
    }
    Ok(t)
}

impl ImportLine {
    /// A line of JSON lines: `{"fields": {...}, "source": ..., "collected_at": ...,
    /// "consents": [{"kind": ..., "given_at": ..., "policy_version": ..., "evidence": {...}}]}`.
    pub fn from_json(text: &str, now: DateTime<Utc>) -> Result<ImportLine, Vec<LineProblem>> {
        let value: Value = derbes_core::input::parse_json(text.as_bytes()).map_err(|e| {
            let (field, reason) = match e {
                derbes_core::input::JsonInputError::Empty => ("line".into(), "empty".into()),
                derbes_core::input::JsonInputError::Control(_) => {
                    ("line".into(), "holds a control character".into())
                }
                derbes_core::input::JsonInputError::Invalid { field, reason } => (field, reason),
            };
            vec![problem(
                field.replace("body", "line"),
                "invalid_json",
                &reason,
            )]
        })?;
        ImportLine::from_value(value, now)
    }

    /// A line as a JSON value of the shape [`ImportLine::from_json`] reads.
    pub fn from_value(
        mut value: Value,
        now: DateTime<Utc>,
    ) -> Result<ImportLine, Vec<LineProblem>> {
        let mut problems = Vec::new();
        let Some(obj) = value.as_object_mut() else {
            return Err(vec![problem(
                "line",
                "invalid_json",
                "a JSON object is expected",
            )]);
        };
        let collected_at = match obj.remove("collected_at") {
            None | Some(Value::Null) => None,
            Some(v) => past_time(&v, "collected_at", now)
                .map_err(|p| problems.push(p))
                .ok(),
        };
        let mut given_at = Vec::new();
        if let Some(Value::Array(consents)) = obj.get_mut("consents") {
            for (i, c) in consents.iter_mut().enumerate() {
                let field = format!("consents[{i}].given_at");
                match c.as_object_mut().map(|c| c.remove("given_at")) {
                    Some(Some(v)) => match past_time(&v, &field, now) {
                        Ok(t) => given_at.push(t),
                        Err(p) => problems.push(p),
                    },
                    _ => problems.push(problem(
                        field,
                        "missing_field",
                        "when the person gave this consent (the evidence of an imported consent)",
                    )),
                }
            }
        }
        let registration = serde_json::from_value::<RegistrationRequest>(value).map_err(|e| {
            let (field, reason) = derbes_core::input::describe(&e);
            problem(field.replace("body", "line"), "invalid_json", &reason)
        });
        match registration {
            Ok(registration) if problems.is_empty() => Ok(ImportLine {
                registration,
                collected_at,
                given_at,
            }),
            Ok(_) => Err(problems),
            Err(p) => {
                problems.push(p);
                Err(problems)
            }
        }
    }
}

/// The columns of a CSV import, from its header: policy field ids
/// (`identity.iin`), and `source`, `collected_at`, `consents` (kinds
/// separated by `;`, a marketing consent as `marketing:sms`), `given_at`,
/// `policy_version`, `app_version`, `collected_via`, `notify_of_transfers`
/// (these apply to every consent of the row).
#[derive(Debug, Clone)]
pub struct CsvColumns {
    columns: Vec<(String, Option<FieldType>)>,
}

const CSV_WORDS: [&str; 8] = [
    "source",
    "collected_at",
    "consents",
    "given_at",
    "policy_version",
    "app_version",
    "collected_via",
    "notify_of_transfers",
];

impl CsvColumns {
    /// Read a header: every column a policy field or one of the words above.
    pub fn new(
        policy: &derbes_policy::Policy,
        header: &[String],
    ) -> Result<CsvColumns, Vec<LineProblem>> {
        let mut problems = Vec::new();
        let mut columns = Vec::new();
        for (i, name) in header.iter().enumerate() {
            let name = name.trim().to_string();
            if CSV_WORDS.contains(&name.as_str()) {
                columns.push((name, None));
            } else if let Some((_, ty)) = derbes_core::field_ref(policy, &name) {
                columns.push((name, Some(ty)));
            } else {
                problems.push(problem(
                    format!("column {}", i + 1),
                    "unknown_column",
                    "neither a field of the policy (category.field) nor one of: source, collected_at, consents, given_at, policy_version, app_version, collected_via, notify_of_transfers",
                ));
            }
        }
        if problems.is_empty() {
            Ok(CsvColumns { columns })
        } else {
            Err(problems)
        }
    }

    /// A CSV row as the JSON line it stands for.
    pub fn line(&self, row: &[String], now: DateTime<Utc>) -> Result<ImportLine, Vec<LineProblem>> {
        if row.len() != self.columns.len() {
            return Err(vec![problem(
                "line",
                "wrong_column_count",
                "the row has a different number of columns than the header",
            )]);
        }
        let mut fields = serde_json::Map::new();
        let mut top = serde_json::Map::new();
        let mut common = serde_json::Map::new();
        let mut evidence = serde_json::Map::new();
        let mut kinds = Vec::new();
        for ((name, ty), cell) in self.columns.iter().zip(row) {
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            match (name.as_str(), ty) {
                (_, Some(FieldType::Boolean)) => {
                    let v = match cell {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        other => Value::from(other),
                    };
                    fields.insert(name.clone(), v);
                }
                (_, Some(_)) => {
                    fields.insert(name.clone(), Value::from(cell));
                }
                ("source" | "collected_at", None) => {
                    top.insert(name.clone(), Value::from(cell));
                }
                ("consents", None) => {
                    kinds = cell.split(';').map(str::trim).map(String::from).collect()
                }
                ("app_version" | "collected_via", None) => {
                    evidence.insert(name.clone(), Value::from(cell));
                }
                ("notify_of_transfers", None) => {
                    common.insert(name.clone(), Value::Bool(cell == "true"));
                }
                _ => {
                    common.insert(name.clone(), Value::from(cell));
                }
            }
        }
        let consents: Vec<Value> = kinds
            .iter()
            .filter(|k| !k.is_empty())
            .map(|k| {
                let mut c = serde_json::Map::new();
                let (kind, channel) = k.split_once(':').unwrap_or((k, ""));
                c.insert("kind".into(), Value::from(kind));
                if !channel.is_empty() {
                    c.insert("channel".into(), Value::from(channel));
                }
                for (n, v) in &common {
                    if n == "notify_of_transfers" && kind != "policy" {
                        continue;
                    }
                    c.insert(n.clone(), v.clone());
                }
                if !evidence.is_empty() {
                    c.insert("evidence".into(), Value::Object(evidence.clone()));
                }
                Value::Object(c)
            })
            .collect();
        top.insert("fields".into(), Value::Object(fields));
        top.insert("consents".into(), Value::Array(consents));
        ImportLine::from_value(Value::Object(top), now)
    }
}

/// An import under way: its checkpoint, and the published policy versions
/// its consents name.
#[derive(Debug)]
pub struct Importer {
    engine: Engine,
    actor: Actor,
    report: ImportReport,
    progress: ImportProgress,
    versions: HashMap<String, Option<Arc<LoadedPolicy>>>,
    began: std::time::Instant,
    /// The batch being written while the next one is read and sealed.
    writing: Option<tokio::task::JoinHandle<Result<Written, EngineError>>>,
}

/// What writing a batch found: the lines it refused (minors barred, people
/// registered already), how many it registered, the checkpoint it wrote.
#[derive(Debug)]
struct Written {
    refused: Vec<(u64, LineProblem)>,
    imported: u64,
    progress: ImportProgress,
    /// The batch, handed back to be freed on the thread that sealed it:
    /// freed there, its memory serves the next batch at once; freed on
    /// the writer's thread, the sealing thread took fresh pages from the
    /// system for every batch.
    spent: ImportBatch,
}

impl Engine {
    /// Begin (or resume) importing the file whose SHA-256 is `import_id`.
    pub async fn import(
        &self,
        actor: &Actor,
        import_id: &str,
        dry_run: bool,
    ) -> Result<Importer, EngineError> {
        self.require(actor, Capability::RegisterSubjects)?;
        let progress = if dry_run {
            ImportProgress::default()
        } else {
            self.store
                .import_progress(import_id)
                .await?
                .unwrap_or_default()
        };
        Ok(Importer {
            engine: self.clone(),
            actor: actor.clone(),
            report: ImportReport {
                import_id: import_id.to_string(),
                dry_run,
                resumed_after_line: progress.lines_done as u64,
                ..ImportReport::default()
            },
            progress,
            versions: HashMap::new(),
            began: std::time::Instant::now(),
            writing: None,
        })
    }
}

impl Importer {
    /// Every line up to this one was done by an earlier run: skip them.
    pub fn resume_after(&self) -> u64 {
        self.report.resumed_after_line
    }

    /// The engine's clock (for reading lines).
    pub fn now(&self) -> DateTime<Utc> {
        self.engine.now()
    }

    fn refuse(&mut self, line: u64, problems: Vec<LineProblem>) {
        self.report.refused += 1;
        self.progress.refused += 1;
        if self.report.refused_lines.len() < MAX_LISTED {
            self.report
                .refused_lines
                .push(RefusedLine { line, problems });
        }
    }

    /// The published version `v` of the policy (the one in force included).
    async fn version(&mut self, v: &str) -> Result<Option<Arc<LoadedPolicy>>, EngineError> {
        if let Some(p) = self.versions.get(v) {
            return Ok(p.clone());
        }
        let e = &self.engine;
        let found = if v == e.policy.policy().version {
            Some(e.policy.clone())
        } else {
            e.store.policy_version(v).await?.and_then(|(pv, text)| {
                LoadedPolicy::from_text(text)
                    .ok()
                    .filter(|p| p.sha256() == pv.sha256)
                    .map(Arc::new)
            })
        };
        self.versions.insert(v.to_string(), found.clone());
        Ok(found)
    }

    /// Validate a line exactly as a registration, its consents to the
    /// versions the person accepted at the times they gave them.
    async fn prepare(
        &mut self,
        line: &ImportLine,
    ) -> Result<Result<Prepared, Vec<LineProblem>>, EngineError> {
        let e = self.engine.clone();
        let now = e.now();
        let reg = &line.registration;
        let valid = match validate_registration(e.policy.policy(), reg, almaty_date(now)) {
            Ok(v) => v,
            Err(p) => return Ok(Err(problems_at("", p))),
        };
        let subject = SubjectId::new();
        let mut consents = Vec::new();
        let mut problems = Vec::new();
        for (i, (c, at)) in reg.consents.iter().zip(&line.given_at).enumerate() {
            let prefix = format!("consents[{i}].");
            let version = c
                .policy_version
                .clone()
                .unwrap_or_else(|| e.policy.policy().version.clone());
            let Some(policy) = self.version(&version).await? else {
                problems.push(problem(
                    format!("{prefix}policy_version"),
                    "unknown_policy_version",
                    "not a published version of the policy (derbes policy publish)",
                ));
                continue;
            };
            match e.new_consent_to(&policy, subject, c, &prefix, *at) {
                Ok(pair) => consents.push(pair),
                Err(p) => problems.extend(problems_at("", p)),
            }
        }
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        let collected_at = line
            .collected_at
            .or_else(|| line.given_at.iter().min().copied())
            .unwrap_or(now);
        Ok(Ok(e
            .prepare_subject(subject, &valid, consents, collected_at)
            .await?))
    }

    /// Validate and register a batch of lines `(number, line or why not)`
    /// in one transaction that advances the checkpoint past the last.
    pub async fn batch(
        &mut self,
        lines: Vec<(u64, Result<ImportLine, Vec<LineProblem>>)>,
    ) -> Result<(), EngineError> {
        let Some(last) = lines.last().map(|(n, _)| *n) else {
            return Ok(());
        };
        self.report.lines += lines.len() as u64;
        let mut ready: Vec<(u64, Prepared)> = Vec::with_capacity(lines.len());
        for (n, line) in lines {
            match line {
                Err(p) => self.refuse(n, p),
                Ok(line) => match self.prepare(&line).await? {
                    Ok(p) => ready.push((n, p)),
                    Err(p) => self.refuse(n, p),
                },
            }
        }
        // The previous batch's write ran while this one was sealed; its
        // checkpoint is the base of this one's.
        self.flush().await?;
        let progress = ImportProgress {
            lines_done: last as i64,
            ..self.progress
        };
        self.progress.lines_done = last as i64;
        let (e, actor, id, dry_run) = (
            self.engine.clone(),
            self.actor.clone(),
            self.report.import_id.clone(),
            self.report.dry_run,
        );
        self.writing = Some(tokio::spawn(async move {
            write_batch(&e, &actor, &id, dry_run, ready, progress).await
        }));
        Ok(())
    }

    /// Wait for the batch being written, and count what it found.
    pub async fn flush(&mut self) -> Result<(), EngineError> {
        let Some(writing) = self.writing.take() else {
            return Ok(());
        };
        let w = writing
            .await
            .map_err(|e| EngineError::Internal(format!("the import's writer stopped: {e}")))??;
        drop(w.spent);
        for (n, p) in w.refused {
            self.refuse(n, vec![p]);
        }
        self.report.imported += w.imported;
        self.progress.imported = w.progress.imported;
        Ok(())
    }

    /// Finish: the import's audit record, and its report.
    pub async fn finish(mut self) -> Result<ImportReport, EngineError> {
        self.flush().await?;
        let secs = self.began.elapsed().as_secs_f64();
        self.report.seconds = secs;
        self.report.subjects_per_second = if secs > 0.0 {
            self.report.imported as f64 / secs
        } else {
            0.0
        };
        if !self.report.dry_run {
            if self.report.imported > 0 {
                self.engine.store.analyze_subjects().await?;
            }
            let mut reasons = BTreeMap::<String, u64>::new();
            for l in &self.report.refused_lines {
                for p in &l.problems {
                    *reasons.entry(p.code.clone()).or_default() += 1;
                }
            }
            self.engine
                .audit(
                    Record::new(&self.actor, "import").details(serde_json::json!({
                        "import": self.report.import_id,
                        "resumed_after_line": self.report.resumed_after_line,
                        "lines": self.report.lines,
                        "imported": self.report.imported,
                        "refused": self.report.refused,
                        "refusals": reasons,
                    })),
                )
                .await?;
        }
        Ok(self.report)
    }
}

/// Write one batch: minors barred (clause 7.7), then the subjects in one
/// transaction with their `register` records and the import's checkpoint
/// (`progress` advanced by what this batch registered and refused). The
/// unique index decides who is registered already, or twice in the batch,
/// in the statements that write it; a dry run writes the same and rolls
/// back.
async fn write_batch(
    e: &Engine,
    actor: &Actor,
    import_id: &str,
    dry_run: bool,
    ready: Vec<(u64, Prepared)>,
    mut progress: ImportProgress,
) -> Result<Written, EngineError> {
    let now = e.now();
    let iins: Vec<Vec<u8>> = ready
        .iter()
        .filter_map(|(_, p)| p.iin_digest().cloned())
        .collect();
    let barred = e.store.barred_among(&iins, now).await?;
    let mut refused = Vec::new();
    let mut lines = Vec::with_capacity(ready.len());
    let mut wrapped = Vec::with_capacity(ready.len());
    let mut batch = ImportBatch {
        import_id: import_id.to_string(),
        now,
        dry_run,
        ..ImportBatch::default()
    };
    for (n, p) in ready {
        if p.iin_digest().is_some_and(|d| barred.contains(d)) {
            refused.extend(
                problems_at("", vec![e.barred_problem()])
                    .into_iter()
                    .map(|p| (n, p)),
            );
            continue;
        }
        batch
            .records
            .push(e.audit_record(p.record(actor, Some(import_id)))?);
        let (new, key) = p.into_parts();
        lines.push(n);
        batch.subjects.push(new);
        wrapped.push(key);
    }
    progress.refused += refused.len() as i64;
    batch.progress = progress;
    for attempt in 0..3 {
        let written = match e.store.write_import_batch(&mut batch).await {
            Ok(written) => written,
            // Another process rotated the KEK meanwhile: wrap under the new one.
            Err(derbes_store::StoreError::KekChanged { .. }) if attempt < 2 => {
                for (new, key) in batch.subjects.iter_mut().zip(wrapped.iter_mut()) {
                    e.rewrap(new, key).await?;
                }
                continue;
            }
            Err(err) => return Err(e.duplicate(err)),
        };
        let skipped = written.skipped.len();
        for (i, kind) in written.skipped {
            let field = FieldType::parse(&kind)
                .and_then(|t| e.policy.policy().lookup_field(t))
                .map_or(kind.clone(), |f| f.to_string());
            refused.push((
                lines[i],
                problem(
                    field,
                    "duplicate_subject",
                    "a subject with this identifier is registered already (or earlier in the file)",
                ),
            ));
        }
        // What changed for a subject is forgotten by the decisions' cache
        // (`Engine::commit`): none of these is in it yet, but the rule
        // holds at every door.
        if !dry_run {
            for s in &batch.subjects {
                e.facts.forget(&s.subject_id);
            }
        }
        return Ok(Written {
            refused,
            imported: (batch.subjects.len() - skipped) as u64,
            progress: written.progress,
            spent: batch,
        });
    }
    Err(EngineError::Internal(
        "the key-encryption key kept changing during the batch".into(),
    ))
}
