//! Synthetic people and organisations for tests, benchmarks and demos.
//! Deterministic for a seed; no real person's data: names are common Kazakh
//! and Russian names combined at random, IINs and phones are generated with
//! valid check digits and are unique per index, addresses are TEST-NET.

use chrono::{Duration, NaiveDate};
use derbes_kz::{Attribute, Bin, EntityType, Iin, KzIban, Sex};
use serde_json::{json, Value};

/// SplitMix64: small, fast, good enough for test data, identical everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const SURNAMES: &[&str] = &[
    "Абдрахманов",
    "Ахметов",
    "Байжанов",
    "Жумабаев",
    "Искаков",
    "Кенжебаев",
    "Нурланов",
    "Омаров",
    "Сейтказин",
    "Тлеубердиев",
    "Утебаев",
    "Шарипов",
    "Иванов",
    "Петров",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Соколов",
    "Ким",
    "Ли",
    "Цой",
    "Пак",
    "Лебедев",
    "Мухамеджанов",
];
const MALE_NAMES: &[&str] = &[
    "Нурлан",
    "Ерлан",
    "Асхат",
    "Данияр",
    "Арман",
    "Тимур",
    "Ержан",
    "Санжар",
    "Алексей",
    "Дмитрий",
    "Сергей",
    "Андрей",
    "Бауыржан",
    "Айдос",
    "Руслан",
    "Максим",
];
const FEMALE_NAMES: &[&str] = &[
    "Айгерим",
    "Асель",
    "Дана",
    "Жанар",
    "Сауле",
    "Гульнара",
    "Меруерт",
    "Динара",
    "Анна",
    "Елена",
    "Ольга",
    "Наталья",
    "Аружан",
    "Камила",
    "Мадина",
    "Томирис",
];
const FATHERS: &[&str] = &[
    "Серик",
    "Болат",
    "Марат",
    "Нурлан",
    "Ерлан",
    "Канат",
    "Владимир",
    "Александр",
    "Сергей",
    "Бахыт",
];
const POSITIONS: &[&str] = &[
    "директор",
    "бухгалтер",
    "менеджер",
    "индивидуальный предприниматель",
    "инженер",
    "юрист",
    "продавец",
];
const MOBILE: &[u32] = &[700, 701, 702, 705, 707, 708, 747, 771, 775, 776, 777, 778];
const CHANNELS: &[&str] = &["sms", "whatsapp", "telegram", "push", "email", "phone_call"];
const BANKS: &[(&str, &str, &str)] = &[
    ("125", "АО «Тестовый Банк»", "TSTBKZKA"),
    ("601", "АО «Банк Примеров»", "EXMPKZKA"),
    ("722", "АО «Синтетик Банк»", "SYNTKZKA"),
];

fn patronymic(father: &str, sex: Sex) -> String {
    match sex {
        Sex::Male => format!("{father}ович"),
        Sex::Female => format!("{father}овна"),
    }
}

fn surname(stem: &str, sex: Sex) -> String {
    let feminine = stem.ends_with("ов") || stem.ends_with("ев") || stem.ends_with("ин");
    match sex {
        Sex::Female if feminine => format!("{stem}а"),
        _ => stem.to_string(),
    }
}

/// One synthetic user: what the app would submit.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSubject {
    /// A registration request (JSON, as POST /api/v1/subjects takes it).
    pub registration: Value,
    /// Consents given later (JSON, as POST /api/v1/subjects/{id}/consents takes it).
    pub later_consents: Vec<Value>,
    /// An organisation this user acts for (JSON, as POST /api/v1/organizations takes it,
    /// without representatives).
    pub organization: Option<Value>,
    /// Under the minimum age on `today`: the age gate must refuse it.
    pub minor: bool,
    pub iin: String,
}

/// Days in the birth-date window: people aged 14 to 80.
const SPAN: i64 = 66 * 365;
const ODD: i64 = 7919;

/// Subject number `index` of the population with `seed`, as of `today`.
/// Unique IIN and phone per index (for indexes below 10 million).
pub fn subject(seed: u64, index: u64, today: NaiveDate) -> SyntheticSubject {
    let mut r = Rng::new(seed.wrapping_mul(0x1000_0000_01B3) ^ index);
    let k = index as i64;
    let oldest = today - Duration::days(80 * 365);
    let day = ((k % SPAN) * ODD) % SPAN;
    let birth = oldest + Duration::days(day);
    let sex = if r.chance(50) { Sex::Male } else { Sex::Female };
    let mut serial = (k / SPAN) as u16;
    let iin = loop {
        match Iin::from_parts(birth, sex, serial) {
            Ok(i) => break i,
            Err(_) => serial = serial.wrapping_add(5000) % 10_000,
        }
    };
    let minor = iin.age_on(today) < 18;
    let phone = format!("+7{}{:07}", r.pick(MOBILE), (k * 1_000_003) % 10_000_000);
    let first = match sex {
        Sex::Male => *r.pick(MALE_NAMES),
        Sex::Female => *r.pick(FEMALE_NAMES),
    };
    let mut fields = serde_json::Map::new();
    fields.insert("identity.iin".into(), json!(iin.to_string()));
    fields.insert("identity.rk_citizen".into(), json!(true));
    fields.insert(
        "full_name.surname".into(),
        json!(surname(r.pick::<&str>(SURNAMES), sex)),
    );
    fields.insert("full_name.first_name".into(), json!(first));
    if r.chance(80) {
        fields.insert(
            "full_name.patronymic".into(),
            json!(patronymic(r.pick::<&str>(FATHERS), sex)),
        );
    }
    fields.insert("contact.phone".into(), json!(phone));
    if r.chance(50) {
        fields.insert(
            "contact.email".into(),
            json!(format!("user{index}@example.kz")),
        );
    }
    if r.chance(60) {
        fields.insert("position.position".into(), json!(r.pick(POSITIONS)));
    }
    let client = format!("203.0.113.{}", r.below(250) + 1);
    let mut consents = vec![json!({
        "kind": "policy",
        "evidence": {"collected_via": "in_app", "app_version": format!("3.{}.{}", r.below(4), r.below(10)), "client_address": client}
    })];
    if r.chance(10) {
        let bank = r.pick(BANKS);
        fields.insert(
            "entrepreneur.surname_initials".into(),
            json!(format!(
                "{} {}.",
                surname(r.pick::<&str>(SURNAMES), sex),
                first.chars().next().unwrap_or('А')
            )),
        );
        fields.insert("entrepreneur.iin".into(), json!(iin.to_string()));
        fields.insert(
            "entrepreneur.bank_account".into(),
            json!(iban(&mut r, bank.0)),
        );
        fields.insert("entrepreneur.bank_name".into(), json!(bank.1));
        fields.insert("entrepreneur.bik".into(), json!(bank.2));
        consents.push(json!({"kind": "entrepreneur", "evidence": {"collected_via": "written"}}));
    }
    let mut later = Vec::new();
    if r.chance(40) {
        later.push(json!({"kind": "marketing", "channel": r.pick(CHANNELS)}));
    }
    if r.chance(30) {
        later.push(json!({"kind": "cookies", "expires_in_months": r.below(13) + 1}));
    }
    let organization = if r.chance(5) {
        Some(organization(&mut r, index))
    } else {
        None
    };
    SyntheticSubject {
        registration: json!({"fields": fields, "source": "subject", "consents": consents}),
        later_consents: later,
        organization,
        minor,
        iin: iin.to_string(),
    }
}

fn iban(r: &mut Rng, bank: &str) -> String {
    let account = format!("{:013}", r.below(10_000_000_000_000));
    KzIban::from_parts(bank, &account)
        .map(|i| i.as_str().to_string())
        .unwrap_or_default()
}

fn organization(r: &mut Rng, index: u64) -> Value {
    let (year, month) = (1995 + r.below(31) as i32, 1 + r.below(12) as u32);
    let mut serial = (index % 100_000) as u32;
    let bin = loop {
        match Bin::from_parts(
            year,
            month,
            EntityType::ResidentLegalEntity,
            Attribute::HeadOffice,
            serial,
        ) {
            Ok(b) => break b,
            Err(_) => serial = (serial + 50_000) % 100_000,
        }
    };
    let bank = r.pick(BANKS);
    json!({
        "fields": {
            "organisation.name": format!("ТОО «Синтетика-{index}»"),
            "organisation.bin": bin.to_string(),
            "organisation.bank_account": iban(r, bank.0),
            "organisation.bank_name": bank.1,
            "organisation.bik": bank.2,
            "organisation.registered_address": format!("г. Алматы, ул. Тестовая, {}", r.below(200) + 1),
            "organisation.phone": format!("+7727{:07}", r.below(10_000_000)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_unique_and_valid() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let a: Vec<_> = (0..2000).map(|i| subject(7, i, today)).collect();
        let b: Vec<_> = (0..2000).map(|i| subject(7, i, today)).collect();
        assert_eq!(a, b, "same seed, same people");
        assert_ne!(subject(8, 1, today).registration, a[1].registration);
        let iins: std::collections::HashSet<_> = a.iter().map(|s| s.iin.clone()).collect();
        assert_eq!(iins.len(), a.len());
        let phones: std::collections::HashSet<_> = a
            .iter()
            .map(|s| s.registration["fields"]["contact.phone"].clone())
            .collect();
        assert_eq!(phones.len(), a.len());
        let minors = a.iter().filter(|s| s.minor).count();
        assert!(minors > 20 && minors < 300, "{minors} minors");
        assert!(a.iter().any(|s| s.organization.is_some()));
        assert!(a
            .iter()
            .any(|s| s.later_consents.iter().any(|c| c["kind"] == "cookies")));
        for s in &a {
            assert!(Iin::parse(&s.iin).is_ok());
            assert!(derbes_kz::KzPhone::parse(
                s.registration["fields"]["contact.phone"].as_str().unwrap()
            )
            .is_ok());
        }
    }
}
