//! Notes: the free text people type into derbes — a complaint in the
//! requester's words, a refusal's reason, a hold's or an obligation's
//! reference, a disclosure's legal basis, a representative's name. Any of it
//! may name a person, so it is sealed like a field: under the subject's data
//! key (and destroyed with the subject), or, when a note belongs to no
//! subject (an anonymous complaint), under its owner's data key, wrapped by
//! the KEK like a subject's. It never enters the audit log; each opening is
//! audited (`notes.read`, without the text).

use std::collections::HashMap;

use derbes_core::SubjectId;
use derbes_store::NoteRow;
use derbes_vault::DataKey;

use crate::audit::Record;

use crate::{Actor, Engine, EngineError};

/// The additional data a note is sealed with: its owner and name.
pub(crate) fn label(owner: &str, name: &str) -> String {
    format!("note:{owner}#{name}")
}

/// Opened notes by (owner, name).
pub(crate) type Opened = HashMap<(String, String), String>;

impl Engine {
    /// The data key of a note owner of no subject (created when `create`).
    pub(crate) async fn owner_key(
        &self,
        owner: &str,
        create: bool,
    ) -> Result<DataKey, EngineError> {
        let stored = match (self.store.subject_key(owner).await?, create) {
            (Some(k), _) => k,
            (None, false) => return Err(EngineError::NotFound("note key")),
            (None, true) => {
                let (_, mut wrapped) = self.new_data_key(owner).await?;
                loop {
                    let mut w = self.write().await?;
                    match w
                        .owner_key(owner, wrapped.kek.as_str(), &wrapped.bytes, self.now())
                        .await
                    {
                        Ok(k) => {
                            w.commit().await?;
                            break k;
                        }
                        Err(derbes_store::StoreError::KekChanged { .. }) => {
                            drop(w);
                            wrapped = self.rewrap_for_active(owner, &wrapped).await?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        };
        self.unwrap_stored(owner, stored)
    }

    /// Seal the present texts of `(owner, name, text)` as notes of `subject`.
    pub(crate) async fn seal_notes(
        &self,
        subject: Option<SubjectId>,
        texts: &[(String, &str, Option<&str>)],
    ) -> Result<Vec<NoteRow>, EngineError> {
        let present: Vec<(&String, &str, &str)> = texts
            .iter()
            .filter_map(|(o, n, t)| t.filter(|t| !t.is_empty()).map(|t| (o, *n, t)))
            .collect();
        if present.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(present.len());
        match subject {
            Some(s) => {
                let sid = s.to_string();
                let key = self.data_key(s).await?;
                for (owner, name, text) in present {
                    out.push(NoteRow {
                        subject_id: Some(s),
                        owner: owner.clone(),
                        name: name.to_string(),
                        sealed: key.seal(&sid, &label(owner, name), text.as_bytes())?,
                    });
                }
            }
            None => {
                for (owner, name, text) in present {
                    let key = self.owner_key(owner, true).await?;
                    out.push(NoteRow {
                        subject_id: None,
                        owner: owner.clone(),
                        name: name.to_string(),
                        sealed: key.seal(owner, &label(owner, name), text.as_bytes())?,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Open the notes of `owners` for `actor`, who may see the objects they
    /// belong to (the caller checked): audited as `notes.read`, without the
    /// text. A destroyed subject's notes are gone: nothing is returned.
    pub(crate) async fn open_notes(
        &self,
        actor: &Actor,
        subject: Option<SubjectId>,
        owners: &[String],
    ) -> Result<Opened, EngineError> {
        let sid = subject.map(|s| s.to_string()).unwrap_or_default();
        let rows = self.store.notes(subject, owners).await?;
        let mut out = HashMap::with_capacity(rows.len());
        if rows.is_empty() {
            return Ok(out);
        }
        let subject_key: Option<DataKey> = match subject {
            Some(s) => match self.data_key(s).await {
                Ok(k) => Some(k),
                Err(EngineError::Destroyed) => return Ok(out),
                Err(e) => return Err(e),
            },
            None => None,
        };
        for r in &rows {
            let text = match &subject_key {
                Some(k) => self.open_sealed(k, &sid, &label(&r.owner, &r.name), &r.sealed)?,
                None => {
                    let key = self.owner_key(&r.owner, false).await?;
                    self.open_sealed(&key, &r.owner, &label(&r.owner, &r.name), &r.sealed)?
                }
            };
            out.insert((r.owner.clone(), r.name.clone()), text);
        }
        self.audit(
            Record::new(actor, "notes.read")
                .subject(subject)
                .details(serde_json::json!({"owners": owners.len(), "notes": out.len()})),
        )
        .await?;
        Ok(out)
    }
}

impl Engine {
    /// Seal the free text an earlier version of derbes stored in plaintext
    /// (refusal reasons, references, legal bases, withdrawal evidence, free
    /// request details) as notes, and clear the plaintext. Each in its own
    /// transaction; a destroyed subject's text is only cleared. Idempotent:
    /// with nothing left it costs a handful of queries. Returns how many
    /// texts were sealed or cleared.
    pub async fn seal_legacy_text(&self) -> Result<u64, EngineError> {
        let mut n = 0;
        for t in self.store.legacy_texts().await? {
            let subject = t.subject_id;
            let notes = match self
                .seal_notes(subject, &[(t.owner.clone(), &t.name, Some(&t.text))])
                .await
            {
                Ok(notes) => notes,
                Err(EngineError::Destroyed) => Vec::new(),
                Err(e) => return Err(e),
            };
            let mut w = self.write().await?;
            w.replace_legacy(&t, &notes).await?;
            w.commit().await?;
            n += 1;
        }
        for stored in self.store.request_details().await? {
            let derbes_store::StoredDetails {
                request_id,
                subject_id,
                details,
            } = stored;
            let Ok(serde_json::Value::Object(mut all)) = serde_json::from_str(&details) else {
                continue;
            };
            // Keep the codes derbes reads; the rest was free text.
            let mut kept = serde_json::Map::new();
            for k in ["channels", "kind", "consent", "fields", "derbes"] {
                if let Some(v) = all.remove(k) {
                    kept.insert(k.to_string(), v);
                }
            }
            if all.is_empty() {
                continue;
            }
            let text = serde_json::Value::Object(all).to_string();
            let subject = subject_id;
            let owner = format!("request:{request_id}");
            let notes = match self
                .seal_notes(subject, &[(owner, "text", Some(&text))])
                .await
            {
                Ok(notes) => notes,
                Err(EngineError::Destroyed) => Vec::new(),
                Err(e) => return Err(e),
            };
            let mut w = self.write().await?;
            w.replace_request_details(
                &request_id,
                &serde_json::Value::Object(kept).to_string(),
                &notes,
            )
            .await?;
            w.commit().await?;
            n += 1;
        }
        if n > 0 {
            self.audit(
                Record::new(
                    &Actor::system(crate::SystemJob::Upgrade),
                    "notes.sealed_legacy",
                )
                .details(serde_json::json!({"texts": n})),
            )
            .await?;
            self.expunge().await?;
        }
        Ok(n)
    }
}
