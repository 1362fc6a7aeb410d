//! Destruction, once: every path that destroys personal data — a destruction
//! or withdrawal request, a minor's report, a withdrawn consent that some
//! categories need, the retention purge — builds an [`Order`] and calls
//! [`Engine::destroy`]. It decides what goes and what a law keeps, writes the
//! certificate, and hands everything to the store's destroying piece
//! (`Write::destroy`) in one unit of work, which refuses a blocked or held
//! subject inside the transaction that deletes, marks the job done and
//! completes the request there too; the audit record of each destruction,
//! with its certificate's hash, commits in that same transaction.

use chrono::{DateTime, Utc};
use derbes_core::{RetentionRules, SubjectId, SubjectStatus, Until};
use derbes_policy::{ConsentKind, Lang};
use derbes_store::{DestroyOutcome, Destruction, Scope};
use serde::Serialize;
use serde_json::json;

use crate::audit::Record;
use crate::{field_categories, Actor, Engine, EngineError};

/// Why data is destroyed: the certificate's legal ground.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ground {
    /// The subject withdrew consent (7.11).
    Withdrawal,
    /// The subject asked for destruction (7.11, the Law).
    Request,
    /// The subject was found to be under 18 (7.7).
    Minor,
    /// No purpose keeps it any more (7.1).
    Retention,
    /// The consent these categories need was withdrawn (3.5, 7.4).
    Consent(ConsentKind),
}

impl Ground {
    /// The code a certificate records (`consent:<kind>` for a consent).
    pub(crate) fn code(self) -> String {
        match self {
            Ground::Withdrawal => "withdrawal".into(),
            Ground::Request => "request".into(),
            Ground::Minor => "minor".into(),
            Ground::Retention => "retention".into(),
            Ground::Consent(k) => format!("consent:{}", k.as_str()),
        }
    }

    /// The ground a certificate's code names.
    fn parse(code: &str) -> Option<Ground> {
        Some(match code {
            "withdrawal" => Ground::Withdrawal,
            "request" => Ground::Request,
            "minor" => Ground::Minor,
            "retention" => Ground::Retention,
            _ => Ground::Consent(ConsentKind::parse(code.strip_prefix("consent:")?)?),
        })
    }

    /// The ground in a person's words, in `lang`.
    fn words(self, lang: Lang) -> &'static str {
        match self {
            Ground::Withdrawal => lang.pick(
                "отзыв согласия (пункт 7.11 Политики)",
                "келісімді кері қайтару (Саясаттың 7.11-тармағы)",
                "withdrawal of consent (policy clause 7.11)",
            ),
            Ground::Request => lang.pick(
                "требование субъекта об уничтожении (пункт 7.11 Политики; Закон «О персональных данных и их защите»)",
                "субъектінің жою туралы талабы (Саясаттың 7.11-тармағы; «Дербес деректер және оларды қорғау туралы» Заң)",
                "the subject's request for destruction (policy clause 7.11; Law «О персональных данных и их защите»)",
            ),
            Ground::Minor => lang.pick(
                "субъект не достиг 18 лет (пункт 7.7 Политики)",
                "субъект 18 жасқа толмаған (Саясаттың 7.7-тармағы)",
                "the subject is under 18 (policy clause 7.7)",
            ),
            Ground::Retention => lang.pick(
                "истёк срок хранения для всех целей (пункт 7.1 Политики)",
                "барлық мақсаттар үшін сақтау мерзімі аяқталды (Саясаттың 7.1-тармағы)",
                "end of the purposes' retention (policy clause 7.1)",
            ),
            Ground::Consent(ConsentKind::Entrepreneur) => lang.pick(
                "отзыв согласия индивидуального предпринимателя (пункт 3.5 Политики)",
                "жеке кәсіпкердің келісімін кері қайтару (Саясаттың 3.5-тармағы)",
                "withdrawal of the entrepreneur's consent (policy clause 3.5)",
            ),
            Ground::Consent(ConsentKind::Cookies) => lang.pick(
                "отзыв согласия на cookies (пункты 7.4–7.5 Политики)",
                "cookies келісімін кері қайтару (Саясаттың 7.4–7.5-тармақтары)",
                "withdrawal of the cookie consent (policy clauses 7.4-7.5)",
            ),
            Ground::Consent(_) => lang.pick(
                "отзыв согласия, необходимого этим категориям",
                "осы санаттарға қажетті келісімді кері қайтару",
                "withdrawal of the consent these categories need",
            ),
        }
    }

    /// The ground in English (the certificate's `legal_ground`, the audit).
    pub(crate) fn text(self) -> &'static str {
        self.words(Lang::En)
    }

    /// What a law obliges the operator to keep survives this ground.
    fn keeps_statutory(self) -> bool {
        matches!(self, Ground::Withdrawal | Ground::Request)
    }
}

/// What an order destroys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum What {
    /// Everything: crypto-shredding.
    Everything,
    /// Everything but what a law obliges the operator to keep (then the
    /// subject stays `withdrawn`, holding only that, until its period ends).
    AllButStatutory,
    /// These fields only.
    Fields(Vec<String>),
    /// Every field of these categories.
    Categories(Vec<String>),
}

/// One destruction to carry out.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub subject: SubjectId,
    pub ground: Ground,
    pub what: What,
    pub job_id: Option<String>,
    pub request_id: Option<String>,
    /// The request's legal deadline, which the connected systems are told.
    pub due_at: Option<DateTime<Utc>>,
    /// The subject's fields with their collection time, when the caller has
    /// read them already (the purge); loaded otherwise.
    pub fields: Option<Vec<(String, DateTime<Utc>)>>,
}

impl Order {
    pub(crate) fn new(subject: SubjectId, ground: Ground, what: What) -> Order {
        Order {
            subject,
            ground,
            what,
            job_id: None,
            request_id: None,
            due_at: None,
            fields: None,
        }
    }
}

/// What is kept of a category after a destruction, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Kept {
    pub category: String,
    /// The purpose a law imposes (e.g. `legal_obligation`).
    pub purpose: String,
    /// The legal ground, in the policy's words (ru).
    pub basis: String,
    /// Kept until then, for that purpose only; destroyed afterwards.
    pub until: DateTime<Utc>,
}

/// The answer to a destruction or withdrawal request: what went, what a law
/// keeps and until when — from its certificate.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DestructionAnswer {
    pub certificate_id: String,
    /// The categories destroyed.
    pub destroyed: Vec<String>,
    /// What is kept because a law obliges it, for that purpose only.
    pub kept_by_law: Vec<Kept>,
}

impl DestructionAnswer {
    /// The answer a certificate gives (`None` if it is not one).
    pub(crate) fn of(certificate: &serde_json::Value) -> Option<DestructionAnswer> {
        Some(DestructionAnswer {
            certificate_id: certificate.get("certificate_id")?.as_str()?.to_string(),
            destroyed: serde_json::from_value(certificate.get("categories")?.clone()).ok()?,
            kept_by_law: certificate
                .get("kept_by_law")
                .and_then(|k| serde_json::from_value(k.clone()).ok())
                .unwrap_or_default(),
        })
    }
}

/// What became of an order.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub outcome: DestroyOutcome,
    pub certificate_id: Option<String>,
}

fn category(field: &str) -> &str {
    field.split_once('.').map_or(field, |(c, _)| c)
}

impl Engine {
    /// Carry out destructions (one transaction for all): what each came to.
    pub(crate) async fn destroy(&self, orders: Vec<Order>) -> Result<Vec<Outcome>, EngineError> {
        let now = self.now();
        let p = &self.policy.policy();
        let statutory = RetentionRules::statutory(p);
        let mut items = Vec::with_capacity(orders.len());
        let mut plans = Vec::with_capacity(orders.len());
        for o in &orders {
            let fields = match &o.fields {
                Some(f) => f.clone(),
                None => self
                    .store
                    .subject_fields(o.subject)
                    .await?
                    .into_iter()
                    .map(|f| (f.field, f.collected_at))
                    .collect(),
            };
            let mut kept: Vec<Kept> = Vec::new();
            let mut keep: Vec<&str> = Vec::new();
            if o.what == What::AllButStatutory && o.ground.keeps_statutory() {
                // The relationship ends with the withdrawal (if it had not before).
                let ended = self
                    .subject_facts(o.subject)
                    .await?
                    .relationship_ended_at
                    .unwrap_or(now);
                for (f, collected) in &fields {
                    let r = statutory.field(category(f), *collected, Some(ended));
                    if let (Until::Date { at }, Some(purpose)) = (r.until, &r.kept_for) {
                        if at > now {
                            keep.push(f);
                            if let Some(k) = kept.iter_mut().find(|k| k.category == category(f)) {
                                k.until = k.until.max(at);
                            } else {
                                kept.push(Kept {
                                    category: category(f).to_string(),
                                    purpose: purpose.clone(),
                                    basis: p
                                        .purpose(purpose)
                                        .map(|x| x.retention.basis.ru.clone())
                                        .unwrap_or_default(),
                                    until: at,
                                });
                            }
                        }
                    }
                }
            }
            let destroyed: Vec<String> = match &o.what {
                What::Fields(only) => fields
                    .iter()
                    .map(|(f, _)| f.clone())
                    .filter(|f| only.contains(f))
                    .collect(),
                What::Categories(only) => fields
                    .iter()
                    .map(|(f, _)| f.clone())
                    .filter(|f| only.iter().any(|c| c == category(f)))
                    .collect(),
                _ => fields
                    .iter()
                    .map(|(f, _)| f.clone())
                    .filter(|f| !keep.contains(&f.as_str()))
                    .collect(),
            };
            let scope = match (&o.what, keep.is_empty()) {
                (What::Everything, _) | (What::AllButStatutory, true) => Scope::Whole,
                (what, _) => Scope::Fields {
                    index_kinds: destroyed
                        .iter()
                        .filter_map(|f| p.index_kind(f).map(String::from))
                        .collect(),
                    fields: destroyed.clone(),
                    status_after: (*what == What::AllButStatutory)
                        .then_some(SubjectStatus::Withdrawn),
                    // A withdrawal or a destruction request takes the
                    // subject's free text too; a category's consent does not.
                    notes: *what == What::AllButStatutory,
                },
            };
            let categories = field_categories(destroyed.iter().map(String::as_str));
            let certificate_id = uuid::Uuid::now_v7().to_string();
            let certificate = json!({
                "title": {"ru": "Акт об уничтожении персональных данных", "kk": "Дербес деректерді жою туралы акт", "en": "Certificate of destruction of personal data"},
                "certificate_id": certificate_id,
                "operator": {"name": p.operator.name.ru, "bin": p.operator.bin.to_string()},
                "subject_id": o.subject,
                "request_id": o.request_id,
                "legal_ground": o.ground.text(),
                "ground": o.ground.code(),
                "scope": match scope { Scope::Whole => "whole", Scope::Fields { .. } => "fields" },
                "destroyed_at": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "categories": categories,
                "method": match scope {
                    Scope::Whole => "crypto-shredding: the subject's data key, every sealed field and previous value, the blind-index entries and the opt-outs were deleted; any copy of the sealed data can no longer be opened",
                    Scope::Fields { .. } => "deletion: the sealed fields of these categories, their previous values and blind-index entries were deleted; the subject's data key remains only for what is kept, and goes with it",
                },
                "kept_by_law": kept,
                "kept": "consent ledger and audit records, which hold no personal data",
            })
            .to_string();
            let sha = derbes_policy::sha256_hex(certificate.as_bytes());
            items.push(Destruction {
                subject_id: o.subject,
                scope,
                job_id: o.job_id.clone(),
                request_id: o.request_id.clone(),
                certificate_id: certificate_id.clone(),
                certificate,
                certificate_sha256: sha.clone(),
                events: Vec::new(),
            });
            plans.push((categories, certificate_id, sha, kept));
        }
        // One unit of work: the deletions, the certificates, the jobs and
        // requests they close, and the audit records of what was destroyed.
        let mut w = self.write().await?;
        // What the connected systems must destroy too, written if the
        // subject is destroyed; a request waits for their confirmations.
        let systems = w.systems().await?;
        if !systems.is_empty() {
            for (item, (o, (categories, certificate_id, _, kept))) in
                items.iter_mut().zip(orders.iter().zip(&plans))
            {
                item.events = self.events_for(
                    &systems,
                    &crate::outbox::About {
                        subject: Some(o.subject),
                        request_id: o.request_id.as_deref(),
                        gates: true,
                        due_at: Some(o.due_at.unwrap_or(now)),
                    },
                    &crate::outbox::Change::Destroyed {
                        categories: categories.clone(),
                        kept_by_law: kept.iter().map(|k| k.category.clone()).collect(),
                        whole_person: matches!(o.what, What::AllButStatutory | What::Everything),
                        ground: o.ground.text(),
                        certificate_id: certificate_id.clone(),
                    },
                );
            }
        }
        let outcomes = w.destroy(&items, now).await?;
        let system = Actor::system(crate::SystemJob::Destruction);
        let mut out = Vec::with_capacity(orders.len());
        for ((o, outcome), (categories, certificate_id, sha, kept)) in
            orders.iter().zip(outcomes).zip(plans)
        {
            let destroyed = outcome == DestroyOutcome::Destroyed;
            if destroyed {
                w.audit(
                    self.audit_record(
                        Record::new(&system, "destruction")
                            .subject(o.subject)
                            .categories(&categories)
                            .details(json!({
                                "ground": o.ground.text(),
                                "request_id": o.request_id,
                                "job_id": o.job_id,
                                "certificate_id": certificate_id,
                                "certificate_sha256": sha,
                                "kept_by_law": kept.iter().map(|k| &k.category).collect::<Vec<_>>(),
                            })),
                    )?,
                );
            }
            out.push(Outcome {
                outcome,
                certificate_id: destroyed.then_some(certificate_id),
            });
        }
        w.commit().await?;
        for o in &orders {
            self.facts.forget(&o.subject);
        }
        if out.iter().any(|o| o.outcome == DestroyOutcome::Destroyed) {
            // No image of a destroyed key or value outlives the destruction.
            self.expunge().await?;
        }
        Ok(out)
    }
}

impl Engine {
    /// A certificate as a person reads and prints it, in `lang`: on what
    /// ground, when and how the data was destroyed, the categories, what a
    /// law keeps and until when, and how the audit log confirms it. The
    /// policy's names in `lang`; a certificate issued before it recorded its
    /// ground's and scope's codes is read from its English words.
    pub fn certificate_document(&self, c: &crate::CertificateView, lang: Lang) -> crate::Document {
        let p = self.policy.policy();
        let x = &c.certificate;
        let text = |k: &str| x.get(k).and_then(serde_json::Value::as_str);
        let w = |ru: &'static str, kk: &'static str, en: &'static str| lang.pick(ru, kk, en);
        let when = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| crate::export_html::date(&t.with_timezone(&Utc)))
                .unwrap_or_else(|_| t.to_string())
        };
        let mut d = crate::Document::new(
            lang,
            w(
                "Акт об уничтожении персональных данных",
                "Дербес деректерді жою туралы акт",
                "Certificate of destruction of personal data",
            ),
        )
        .lead(p.law.get(lang));
        d.item(
            w("Номер акта", "Акт нөмірі", "Certificate number"),
            text("certificate_id").unwrap_or(""),
        );
        d.item(
            w("Оператор", "Оператор", "Operator"),
            format!(
                "{}, {} {}",
                p.operator.name.get(lang),
                w("БИН", "БСН", "BIN"),
                x.pointer("/operator/bin")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
            ),
        );
        d.item(
            w(
                "Субъект (идентификатор)",
                "Субъект (сәйкестендіргіш)",
                "Subject (identifier)",
            ),
            text("subject_id").unwrap_or(""),
        );
        d.item(
            w("Обращение", "Өтініш", "Request"),
            text("request_id").unwrap_or("—"),
        );
        d.item(
            w("Основание", "Негіз", "Ground"),
            match text("ground").and_then(Ground::parse) {
                Some(g) => g.words(lang).to_string(),
                None => text("legal_ground").unwrap_or_default().to_string(),
            },
        );
        d.item(
            w("Уничтожено", "Жойылды", "Destroyed"),
            when(text("destroyed_at").unwrap_or_default()),
        );
        let whole = match text("scope") {
            Some(scope) => scope == "whole",
            None => text("method").is_some_and(|m| m.starts_with("crypto-shredding")),
        };
        d.item(
            w("Способ", "Тәсілі", "Method"),
            match whole {
                true => w(
                    "криптографическое уничтожение: удалены ключ данных субъекта, все зашифрованные поля и прежние значения, записи слепого индекса и отказы от рассылок; никакую копию зашифрованных данных больше нельзя открыть",
                    "криптографиялық жою: субъект деректерінің кілті, барлық шифрланған өрістер мен бұрынғы мәндер, соқыр индекс жазбалары және хабарламалардан бас тартулар жойылды; шифрланған деректердің ешбір көшірмесін енді ашу мүмкін емес",
                    "crypto-shredding: the subject's data key, every sealed field and previous value, the blind-index entries and the opt-outs were deleted; any copy of the sealed data can no longer be opened",
                ),
                false => w(
                    "удаление: удалены зашифрованные поля этих категорий, их прежние значения и записи слепого индекса; ключ данных субъекта остаётся только для того, что хранится, и уходит вместе с ним",
                    "жою: осы санаттардың шифрланған өрістері, олардың бұрынғы мәндері және соқыр индекс жазбалары жойылды; субъект деректерінің кілті тек сақталатын деректер үшін қалады және олармен бірге жойылады",
                    "deletion: the sealed fields of these categories, their previous values and blind-index entries were deleted; the subject's data key remains only for what is kept, and goes with it",
                ),
            },
        );
        d.item(
            w("Что остаётся", "Не қалады", "What remains"),
            w(
                "журнал согласий и записи аудита, в которых нет персональных данных",
                "келісімдер журналы және аудит жазбалары, оларда дербес деректер жоқ",
                "consent ledger and audit records, which hold no personal data",
            ),
        );
        let categories: Vec<String> = x
            .get("categories")
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(serde_json::Value::as_str)
                    .map(|c| crate::category_names(p, [c], lang))
                    .collect()
            })
            .unwrap_or_default();
        d.list(
            w(
                "Уничтоженные категории",
                "Жойылған санаттар",
                "Categories destroyed",
            ),
            categories,
        );
        let kept: Vec<Kept> = x
            .get("kept_by_law")
            .and_then(|k| serde_json::from_value(k.clone()).ok())
            .unwrap_or_default();
        d.list(
            w(
                "Хранится, потому что этого требует закон (только для этой цели)",
                "Заң талап ететіндіктен сақталады (тек осы мақсат үшін)",
                "Kept because a law obliges it (for that purpose only)",
            ),
            kept.iter()
                .map(|k| {
                    let purpose = p.purpose(&k.purpose);
                    let until = crate::export_html::date(&k.until);
                    format!(
                        "{} — {} ({}) — {}",
                        crate::category_names(p, [k.category.as_str()], lang),
                        purpose.map_or(k.purpose.as_str(), |x| x.name.get(lang)),
                        purpose.map_or(k.basis.as_str(), |x| x.retention.basis.get(lang)),
                        match lang {
                            Lang::Ru => format!("до {until}"),
                            Lang::Kk => format!("{until} дейін"),
                            Lang::En => format!("until {until}"),
                        }
                    )
                })
                .collect(),
        );
        let yes_no = |b: bool| match b {
            true => w("да", "иә", "yes"),
            false => w("нет", "жоқ", "no"),
        };
        d.list(
            w(
                "Подтверждение журналом аудита",
                "Аудит журналымен растау",
                "Confirmation by the audit log",
            ),
            vec![
                format!("SHA-256: {}", c.sha256),
                format!(
                    "{}: {}",
                    w("Запись аудита", "Аудит жазбасы", "Audit record"),
                    c.audit_id.map_or("—".into(), |a| a.to_string())
                ),
                format!(
                    "{}: {}",
                    w(
                        "Запись содержит этот хеш и не изменена",
                        "Жазбада осы хеш бар және ол өзгертілмеген",
                        "The record holds this hash and is unchanged",
                    ),
                    yes_no(c.confirmed_by_audit)
                ),
                format!(
                    "{}: {}",
                    w(
                        "Подписанная контрольная точка",
                        "Қол қойылған бақылау нүктесі",
                        "Signed checkpoint",
                    ),
                    c.signed_checkpoint.map_or_else(
                        || w("ещё нет", "әлі жоқ", "not yet").to_string(),
                        |s| s.to_string()
                    )
                ),
            ],
        );
        d
    }
}
