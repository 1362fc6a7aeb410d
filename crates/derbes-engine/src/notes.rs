//! Notes: the free text people type into derbes — a complaint in the
//! requester's words, a refusal's reason, a hold's or an obligation's
//! reference, a disclosure's legal basis, a representative's name. Any of it
//! may name a person, so it is sealed like a field: under the subject's data
//! key (and destroyed with the subject), or, when a note belongs to no
//! subject, under a data key of its own wrapped by the KEK. It never enters
//! the audit log; each opening is audited (`notes.read`, without the text).

use std::collections::HashMap;

use derbes_core::SubjectId;
use derbes_store::NoteRow;
use derbes_vault::{DataKey, KekId, WrappedKey};

use crate::{Actor, Engine, EngineError};

/// The additional data a note is sealed with: its owner and name.
fn label(owner: &str, name: &str) -> String {
    format!("note:{owner}#{name}")
}

/// Opened notes by (owner, name).
pub(crate) type Opened = HashMap<(String, String), String>;

impl Engine {
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
                        subject_id: sid.clone(),
                        owner: owner.clone(),
                        name: name.to_string(),
                        sealed: key.seal(&sid, &label(owner, name), text.as_bytes())?,
                        wrapped: None,
                    });
                }
            }
            None => {
                let keys = self.keyring();
                for (owner, name, text) in present {
                    let (key, wrapped) = keys.new_data_key(owner)?;
                    out.push(NoteRow {
                        subject_id: String::new(),
                        owner: owner.clone(),
                        name: name.to_string(),
                        sealed: key.seal(owner, &label(owner, name), text.as_bytes())?,
                        wrapped: Some((wrapped.kek.to_string(), wrapped.bytes)),
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
        let rows = self.store.notes(&sid, owners).await?;
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
            let text = match (&subject_key, &r.wrapped) {
                (Some(k), _) => self.open_sealed(k, &sid, &label(&r.owner, &r.name), &r.sealed)?,
                (None, Some((kek, bytes))) => {
                    let wrapped = WrappedKey {
                        kek: KekId::from_stored(kek),
                        bytes: bytes.clone(),
                    };
                    let key = self.keyring().unwrap_key(&r.owner, &wrapped)?;
                    self.open_sealed(&key, &r.owner, &label(&r.owner, &r.name), &r.sealed)?
                }
                (None, None) => continue,
            };
            out.insert((r.owner.clone(), r.name.clone()), text);
        }
        self.audit(
            actor,
            "notes.read",
            subject,
            None,
            &[],
            None,
            serde_json::json!({"owners": owners.len(), "notes": out.len()}),
        )
        .await?;
        Ok(out)
    }
}
