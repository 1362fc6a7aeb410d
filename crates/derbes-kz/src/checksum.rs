//! The two-pass mod-11 check digit shared by IIN and BIN.

/// Weights of the first pass (1..=11) and of the second pass (3..=11, 1, 2).
const FIRST: [u32; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const SECOND: [u32; 11] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];

/// Which pass produced a check digit: useful to tests and to error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    First,
    Second,
}

/// The check digit of the first eleven digits, or `None` when the second pass
/// also yields 10 (such a number cannot be valid).
pub(crate) fn check_digit(digits: &[u8; 11]) -> Option<(u8, Pass)> {
    let weighted = |weights: &[u32; 11]| -> u32 {
        digits
            .iter()
            .zip(weights)
            .map(|(d, w)| u32::from(*d) * w)
            .sum::<u32>()
            % 11
    };
    let first = weighted(&FIRST);
    if first != 10 {
        return Some((first as u8, Pass::First));
    }
    let second = weighted(&SECOND);
    if second != 10 {
        return Some((second as u8, Pass::Second));
    }
    None
}

/// Twelve ASCII digits, or the reason they are not.
pub(crate) fn twelve_digits(input: &str) -> Result<[u8; 12], DigitsError> {
    let mut out = [0u8; 12];
    let mut count = 0usize;
    for (i, c) in input.chars().enumerate() {
        if !c.is_ascii_digit() {
            return Err(DigitsError::NotDigit(i + 1));
        }
        if let Some(slot) = out.get_mut(i) {
            *slot = c as u8 - b'0';
        }
        count += 1;
    }
    if count != 12 {
        return Err(DigitsError::Length(count));
    }
    Ok(out)
}

pub(crate) enum DigitsError {
    Length(usize),
    NotDigit(usize),
}

pub(crate) fn first_eleven(d: &[u8; 12]) -> [u8; 11] {
    let mut out = [0u8; 11];
    out.copy_from_slice(&d[..11]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_pass() {
        // 87100840142 -> 7 (a synthetic, valid IIN is 871008401427).
        assert_eq!(
            check_digit(&[8, 7, 1, 0, 0, 8, 4, 0, 1, 4, 2]),
            Some((7, Pass::First))
        );
    }

    #[test]
    fn second_pass_is_used_when_first_gives_ten() {
        // Find an input whose first pass yields 10 and check the second pass runs.
        let mut digits = [0u8; 11];
        digits[10] = 10 % 10; // start from zeros and search deterministically
        let mut found = false;
        for n in 0u64..100_000 {
            let mut x = n;
            for d in digits.iter_mut().rev() {
                *d = (x % 10) as u8;
                x /= 10;
            }
            let first: u32 = digits
                .iter()
                .zip(FIRST.iter())
                .map(|(d, w)| u32::from(*d) * w)
                .sum::<u32>()
                % 11;
            if first == 10 {
                let r = check_digit(&digits);
                assert!(matches!(r, Some((_, Pass::Second)) | None));
                found = true;
                break;
            }
        }
        assert!(found);
    }
}
