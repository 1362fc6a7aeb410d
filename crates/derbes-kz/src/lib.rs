//! Kazakhstan primitives for derbes: identifiers that can only be built valid,
//! and the working-day calendar that legal deadlines are counted in.
//!
//! ```
//! use derbes_kz::{Iin, Bin, KzIban, KzPhone, WorkCalendar};
//!
//! let iin: Iin = "871008401427".parse().unwrap();
//! assert_eq!(iin.birth_date().to_string(), "1987-10-08");
//!
//! let bin: Bin = "220440001087".parse().unwrap();
//! assert_eq!(bin.registered(), (2022, 4));
//!
//! assert!("KZ86125KZT5004100100".parse::<KzIban>().is_ok());
//! assert_eq!("8 (701) 123-45-67".parse::<KzPhone>().unwrap().e164(), "+77011234567");
//!
//! let received = chrono::DateTime::parse_from_rfc3339("2024-05-03T17:30:00+05:00").unwrap();
//! let deadline = WorkCalendar::kazakhstan().deadline(&received, 1).unwrap();
//! assert_eq!(deadline.due_rfc3339(), "2024-05-04T23:59:59+05:00");
//! ```
//!
//! Error messages say what is wrong and never repeat the input: an IIN or a
//! phone number is personal data. For the same reason `Debug` of [`Iin`],
//! [`KzPhone`] and [`KzIban`] is redacted.

mod bin;
pub mod calendar;
mod checksum;
mod iban;
mod iin;
mod phone;

pub use bin::{Attribute, Bin, BinError, EntityType};
pub use calendar::{CalendarError, Coverage, Day, Deadline, WorkCalendar, YearCalendar, ALMATY};
pub use iban::{IbanError, KzIban};
pub use iin::{Iin, IinError, Sex};
pub use phone::{KzPhone, PhoneError};
