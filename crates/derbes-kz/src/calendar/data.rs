//! The calendar's data: holiday rules with the years they held, Kurban Ait dates
//! and the yearly transfers of days off. Extend the tables each year when the
//! transfers and the date of Kurban Ait are published, then move
//! [`COVERED_UNTIL`] forward.
//!
//! Sources are named so that each row can be checked: the Law of the Republic
//! of Kazakhstan of 13 December 2001 No. 267-II «О праздниках в Республике
//! Казахстан» (in force from 2002) and its amendments, the Decree of the
//! President of 18 October 1995 No. 2534 that it replaced, the Labour Code
//! (art. 85 p. 3: the Government, since 2023 the Ministry of Labour, may move
//! days off), and the decrees/orders that moved days off (adilet.zan.kz
//! document codes).

/// A calendar date written as year, month, day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ymd(pub i32, pub u32, pub u32);

/// Whether a holiday that falls on a day off gives the next working day off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moves {
    /// National and state holidays: moved to the next working day (since 2002).
    WhenOnDayOff,
    /// 7 January and Kurban Ait: a day off that is never moved.
    Never,
}

/// A fixed-date holiday and the years it was a day off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HolidayRule {
    pub id: &'static str,
    pub name_ru: &'static str,
    pub name_en: &'static str,
    pub month: u32,
    pub day: u32,
    /// First year it was a day off (as far as this calendar goes back).
    pub since: i32,
    /// Last year it was a day off, if it no longer is.
    pub until: Option<i32>,
    pub moves: Moves,
    pub source: &'static str,
}

const LAW_1995: &str =
    "Указ Президента РК от 18.10.1995 № 2534 «О праздниках в Республике Казахстан»";
const LAW_2001: &str = "Закон РК от 13.12.2001 № 267-II «О праздниках в Республике Казахстан»";

/// The holidays that are days off, with their history.
pub const HOLIDAYS: &[HolidayRule] = &[
    HolidayRule { id: "new_year_1", name_ru: "Новый год", name_en: "New Year", month: 1, day: 1, since: 1995, until: None, moves: Moves::WhenOnDayOff, source: LAW_2001 },
    HolidayRule { id: "new_year_2", name_ru: "Новый год", name_en: "New Year", month: 1, day: 2, since: 1995, until: None, moves: Moves::WhenOnDayOff, source: LAW_2001 },
    HolidayRule { id: "orthodox_christmas", name_ru: "Православное Рождество", name_en: "Orthodox Christmas", month: 1, day: 7, since: 2006, until: None, moves: Moves::Never, source: "Закон № 267-II в редакции, действующей с 2006 года (религиозный праздник, выходной день без переноса)" },
    HolidayRule { id: "womens_day", name_ru: "Международный женский день", name_en: "International Women's Day", month: 3, day: 8, since: 1995, until: None, moves: Moves::WhenOnDayOff, source: LAW_2001 },
    HolidayRule { id: "nauryz", name_ru: "Наурыз мейрамы", name_en: "Nauryz", month: 3, day: 22, since: 1995, until: None, moves: Moves::WhenOnDayOff, source: LAW_1995 },
    HolidayRule { id: "nauryz_21", name_ru: "Наурыз мейрамы", name_en: "Nauryz", month: 3, day: 21, since: 2010, until: None, moves: Moves::WhenOnDayOff, source: "Закон № 267-II в редакции 2009 года: Наурыз три дня, 21-23 марта, с 2010 года" },
    HolidayRule { id: "nauryz_23", name_ru: "Наурыз мейрамы", name_en: "Nauryz", month: 3, day: 23, since: 2010, until: None, moves: Moves::WhenOnDayOff, source: "Закон № 267-II в редакции 2009 года: Наурыз три дня, 21-23 марта, с 2010 года" },
    HolidayRule { id: "unity_day", name_ru: "Праздник единства народа Казахстана", name_en: "Day of Unity of the People of Kazakhstan", month: 5, day: 1, since: 1995, until: None, moves: Moves::WhenOnDayOff, source: LAW_2001 },
    HolidayRule { id: "defender_day", name_ru: "День защитника Отечества", name_en: "Defender of the Fatherland Day", month: 5, day: 7, since: 2013, until: None, moves: Moves::WhenOnDayOff, source: "Закон № 267-II в редакции 2012 года: 7 мая — выходной день с 2013 года" },
    HolidayRule { id: "victory_day", name_ru: "День Победы", name_en: "Victory Day", month: 5, day: 9, since: 1995, until: None, moves: Moves::WhenOnDayOff, source: LAW_2001 },
    HolidayRule { id: "capital_day", name_ru: "День Столицы", name_en: "Capital Day", month: 7, day: 6, since: 2009, until: None, moves: Moves::WhenOnDayOff, source: "Закон № 267-II в редакции 2008 года: 6 июля — выходной день с 2009 года" },
    HolidayRule { id: "constitution_day", name_ru: "День Конституции Республики Казахстан", name_en: "Constitution Day", month: 8, day: 30, since: 1996, until: None, moves: Moves::WhenOnDayOff, source: "Указ № 2534 (Конституция 30.08.1995; до неё День Конституции — 28 января); Закон № 267-II" },
    HolidayRule { id: "republic_day", name_ru: "День Республики", name_en: "Republic Day", month: 10, day: 25, since: 1995, until: Some(2008), moves: Moves::WhenOnDayOff, source: "Указ № 2534; Закон № 267-II; исключён из выходных дней с 2009 года" },
    HolidayRule { id: "republic_day_2022", name_ru: "День Республики", name_en: "Republic Day", month: 10, day: 25, since: 2022, until: None, moves: Moves::WhenOnDayOff, source: "Закон № 267-II в редакции 2022 года: 25 октября — национальный праздник, выходной день" },
    HolidayRule { id: "first_president_day", name_ru: "День Первого Президента Республики Казахстан", name_en: "First President Day", month: 12, day: 1, since: 2012, until: Some(2021), moves: Moves::WhenOnDayOff, source: "Закон № 267-II в редакции 2011 года (с 2012 года); отменён в 2022 году" },
    HolidayRule { id: "independence_day", name_ru: "День Независимости", name_en: "Independence Day", month: 12, day: 16, since: 1995, until: None, moves: Moves::WhenOnDayOff, source: LAW_2001 },
    HolidayRule { id: "independence_day_2", name_ru: "День Независимости", name_en: "Independence Day", month: 12, day: 17, since: 2002, until: Some(2021), moves: Moves::WhenOnDayOff, source: "Закон № 267-II: 16-17 декабря (2002-2021); с 2022 года только 16 декабря" },
];

/// Since this year a holiday falling on a day off moves the day off to the next
/// working day (the Law of 2001).
pub const SUBSTITUTION_SINCE: i32 = 2002;

/// Since this year the first day of Kurban Ait is a day off.
pub const KURBAN_AIT_SINCE: i32 = 2006;

pub const KURBAN_AIT_SOURCE: &str =
    "Дата первого дня Курбан айта по решению ДУМК, объявляемая ежегодно; выходной день без переноса (Закон № 267-II, с 2006 года)";

/// The first day of Kurban Ait, as observed in Kazakhstan.
pub const KURBAN_AIT: &[Ymd] = &[
    Ymd(2006, 1, 10),
    Ymd(2007, 12, 20),
    Ymd(2008, 12, 8),
    Ymd(2009, 11, 27),
    Ymd(2010, 11, 16),
    Ymd(2011, 11, 6),
    Ymd(2012, 10, 26),
    Ymd(2013, 10, 15),
    Ymd(2014, 10, 4),
    Ymd(2015, 9, 24),
    Ymd(2016, 9, 12),
    Ymd(2017, 9, 1),
    Ymd(2018, 8, 21),
    Ymd(2019, 8, 11),
    Ymd(2020, 7, 31),
    Ymd(2021, 7, 20),
    Ymd(2022, 7, 9),
    Ymd(2023, 6, 28),
    Ymd(2024, 6, 16),
    Ymd(2025, 6, 6),
    Ymd(2026, 5, 27),
];

/// One transfer of a day off: `working` (a day that would be off) becomes a
/// working day and `rest` (a day that would be worked) becomes a day off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    pub working: Ymd,
    pub rest: Ymd,
    pub source: &'static str,
}

const fn t(working: Ymd, rest: Ymd, source: &'static str) -> Transfer {
    Transfer {
        working,
        rest,
        source,
    }
}

/// Every transfer of days off from 2000 on. Years with none (2004, 2015, 2026)
/// have no rows; they are covered all the same up to [`COVERED_UNTIL`].
pub const TRANSFERS: &[Transfer] = &[
    t(Ymd(2000, 5, 6), Ymd(2000, 5, 8), "Постановление Правительства РК 2000 № 642 (adilet P000000642_)"),
    t(Ymd(2001, 3, 11), Ymd(2001, 3, 9), "Постановление Правительства РК 2001 № 282 (adilet P010000282_)"),
    t(Ymd(2001, 3, 25), Ymd(2001, 3, 23), "Постановление Правительства РК 2001 № 282 (adilet P010000282_)"),
    t(Ymd(2001, 4, 28), Ymd(2001, 4, 30), "Постановление Правительства РК 2001 № 515 (adilet P010000515_)"),
    t(Ymd(2001, 12, 29), Ymd(2001, 12, 31), "Постановление Правительства РК 2001 № 1604 (adilet P010001604_)"),
    t(Ymd(2002, 5, 12), Ymd(2002, 5, 10), "Постановление Правительства РК 2002 № 466 (adilet P020000466_)"),
    t(Ymd(2003, 5, 4), Ymd(2003, 5, 2), "Постановление Правительства РК 2003 № 338 (adilet P030000338_)"),
    t(Ymd(2003, 12, 13), Ymd(2003, 12, 15), "Постановление Правительства РК 2003 № 1166 (adilet P030001166_)"),
    t(Ymd(2005, 3, 5), Ymd(2005, 3, 7), "Постановление Правительства РК 2005 № 142 (adilet P050000142_)"),
    t(Ymd(2005, 3, 19), Ymd(2005, 3, 21), "Постановление Правительства РК 2005 № 142 (adilet P050000142_)"),
    t(Ymd(2005, 8, 27), Ymd(2005, 8, 29), "Постановление Правительства РК 2005 № 751 (adilet P050000751_)"),
    t(Ymd(2005, 10, 22), Ymd(2005, 10, 24), "Постановление Правительства РК 2005 № 949 (adilet P050000949_)"),
    t(Ymd(2006, 1, 14), Ymd(2006, 1, 11), "Постановление Правительства РК 2005 № 1309 (adilet P050001309_)"),
    t(Ymd(2006, 5, 6), Ymd(2006, 5, 8), "Постановление Правительства РК 2006 № 277 (adilet P060000277_)"),
    t(Ymd(2007, 3, 11), Ymd(2007, 3, 9), "Постановление Правительства РК 2007 № 148 (adilet P070000148_)"),
    t(Ymd(2007, 3, 25), Ymd(2007, 3, 23), "Постановление Правительства РК 2007 № 165 (adilet P070000165_)"),
    t(Ymd(2007, 9, 2), Ymd(2007, 8, 31), "Постановление Правительства РК 2007 № 713 (adilet P070000713_)"),
    t(Ymd(2007, 10, 28), Ymd(2007, 10, 26), "Постановление Правительства РК 2007 № 925 (adilet P070000925_)"),
    t(Ymd(2007, 12, 29), Ymd(2007, 12, 31), "Постановление Правительства РК 2007 № 1113 (adilet P070001113_)"),
    t(Ymd(2008, 5, 4), Ymd(2008, 5, 2), "Постановление Правительства РК 2008 № 364 (adilet P080000364_)"),
    t(Ymd(2009, 12, 20), Ymd(2009, 12, 18), "Постановление Правительства РК 2009 № 1936 (adilet P090001936_)"),
    t(Ymd(2010, 1, 10), Ymd(2010, 1, 8), "Постановление Правительства РК 2009 № 2216 (adilet P090002216_)"),
    t(Ymd(2010, 7, 3), Ymd(2010, 7, 5), "Постановление Правительства РК 2010 № 637 (adilet P100000637_)"),
    t(Ymd(2011, 3, 5), Ymd(2011, 3, 7), "Постановление Правительства РК 2011 № 167 (adilet P1100000167)"),
    t(Ymd(2011, 8, 27), Ymd(2011, 8, 29), "Постановление Правительства РК 2011 № 948 (adilet P1100000948)"),
    t(Ymd(2012, 3, 11), Ymd(2012, 3, 9), "Постановление Правительства РК 2012 № 268 (adilet P1200000268)"),
    t(Ymd(2012, 4, 28), Ymd(2012, 4, 30), "Постановление Правительства РК 2012 № 458 (adilet P1200000458)"),
    t(Ymd(2012, 12, 29), Ymd(2012, 12, 31), "Постановление Правительства РК 2012 № 1538 (adilet P1200001538)"),
    t(Ymd(2013, 5, 4), Ymd(2013, 5, 10), "Постановление Правительства РК 2013 № 345 (adilet P1300000345)"),
    t(Ymd(2013, 10, 12), Ymd(2013, 10, 14), "Постановление Правительства РК 2013 № 1068 (adilet P1300001068)"),
    t(Ymd(2013, 12, 28), Ymd(2014, 1, 3), "Постановление Правительства РК 2013 № 1322 (adilet P1300001322)"),
    t(Ymd(2014, 5, 4), Ymd(2014, 5, 2), "Постановление Правительства РК 2014 № 365 (adilet P1400000365)"),
    t(Ymd(2014, 5, 11), Ymd(2014, 5, 8), "Постановление Правительства РК 2014 № 365 (adilet P1400000365)"),
    t(Ymd(2016, 3, 5), Ymd(2016, 3, 7), "Постановление Правительства РК 2016 № 67 (adilet P1600000067)"),
    t(Ymd(2017, 3, 18), Ymd(2017, 3, 20), "Постановление Правительства РК 2017 № 5 (adilet P1700000005)"),
    t(Ymd(2017, 7, 1), Ymd(2017, 7, 7), "Постановление Правительства РК 2017 № 5 (adilet P1700000005)"),
    t(Ymd(2018, 3, 3), Ymd(2018, 3, 9), "Постановление Правительства РК 2017 № 864 (adilet P1700000864)"),
    t(Ymd(2018, 4, 28), Ymd(2018, 4, 30), "Постановление Правительства РК 2017 № 864 (adilet P1700000864)"),
    t(Ymd(2018, 5, 5), Ymd(2018, 5, 8), "Постановление Правительства РК 2017 № 864 (adilet P1700000864)"),
    t(Ymd(2018, 8, 25), Ymd(2018, 8, 31), "Постановление Правительства РК 2017 № 864 (adilet P1700000864)"),
    t(Ymd(2018, 12, 29), Ymd(2018, 12, 31), "Постановление Правительства РК 2017 № 864 (adilet P1700000864)"),
    t(Ymd(2019, 5, 4), Ymd(2019, 5, 10), "Постановление Правительства РК 2018 № 888 (adilet P1800000888)"),
    t(Ymd(2020, 1, 5), Ymd(2020, 1, 3), "Постановление Правительства РК 2019 № 820 (adilet P1900000820)"),
    // Victory Day fell on Saturday: its day off was set on Friday 8 May instead
    // of Monday 11 May.
    t(Ymd(2020, 5, 11), Ymd(2020, 5, 8), "Постановление Правительства РК 2019 № 820 (adilet P1900000820)"),
    t(Ymd(2020, 12, 20), Ymd(2020, 12, 18), "Постановление Правительства РК 2019 № 820 (adilet P1900000820)"),
    t(Ymd(2021, 7, 3), Ymd(2021, 7, 5), "Постановление Правительства РК 2020 № 930 (adilet P2000000930)"),
    t(Ymd(2022, 3, 5), Ymd(2022, 3, 7), "Постановление Правительства РК (adilet P2200000796)"),
    t(Ymd(2022, 8, 27), Ymd(2022, 8, 29), "Постановление Правительства РК (adilet P2200000796)"),
    t(Ymd(2022, 10, 22), Ymd(2022, 10, 24), "Постановление Правительства РК (adilet P2200000796)"),
    t(Ymd(2023, 7, 1), Ymd(2023, 7, 7), "Постановление Правительства РК 2023 № 326 (adilet P2300000326)"),
    t(Ymd(2024, 5, 4), Ymd(2024, 5, 8), "Приказ и.о. Министра труда и социальной защиты населения РК от 17.04.2024 «О переносе дня отдыха в 2024 году»"),
    t(Ymd(2025, 1, 5), Ymd(2025, 1, 3), "Приказ Министра труда и социальной защиты населения РК (adilet G24G0000436)"),
];

/// The first year this calendar answers for.
pub const FIRST_YEAR: i32 = 2000;

/// The last year whose transfers and Kurban Ait date are in the tables. Later
/// years are computed from the Law alone and reported as provisional.
pub const COVERED_UNTIL: i32 = 2026;

/// The last year answered at all (provisionally).
pub const LAST_YEAR: i32 = 2100;
