//! The qualifier byte of an object header: object prefix code (bits 4-6) and range
//! specifier code (bits 0-3).
//!
//! Accepted combinations: no prefix with a start-stop range (codes 0-2), "all objects" (6)
//! or a count (7-9); an index prefix (1-3) with a count, which is how 0x17, 0x28 and 0x39
//! list indexes; a size prefix (4-6) with a count or with range code 0xB, the variable-format
//! count used by 0x5B. Virtual addresses (3-5), reserved codes and bit 7 are refused.

/// What the range field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeSpec {
    /// Start and stop indexes, each this many bytes.
    StartStop(u8),
    /// No range field: all objects of the type.
    All,
    /// A count of objects, this many bytes (range code 0xB is a 1-byte count).
    Count(u8),
}

/// What precedes each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prefix {
    None,
    /// The object's index, this many bytes.
    Index(u8),
    /// The object's size in bytes, this many bytes.
    Size(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Qualifier {
    pub prefix: Prefix,
    pub range: RangeSpec,
}

/// Decode a qualifier byte, or say why it is not acceptable.
pub fn decode(q: u8) -> Result<Qualifier, &'static str> {
    if q & 0x80 != 0 {
        return Err("invalid: bit 7 is reserved");
    }
    let prefix = match (q >> 4) & 0x07 {
        0 => Prefix::None,
        1 => Prefix::Index(1),
        2 => Prefix::Index(2),
        3 => Prefix::Index(4),
        4 => Prefix::Size(1),
        5 => Prefix::Size(2),
        6 => Prefix::Size(4),
        _ => return Err("invalid: object prefix code 7 is reserved"),
    };
    let (range, variable) = match q & 0x0F {
        0 => (RangeSpec::StartStop(1), false),
        1 => (RangeSpec::StartStop(2), false),
        2 => (RangeSpec::StartStop(4), false),
        3..=5 => return Err("a virtual address range, which IEEE 1815 made obsolete"),
        6 => (RangeSpec::All, false),
        7 => (RangeSpec::Count(1), false),
        8 => (RangeSpec::Count(2), false),
        9 => (RangeSpec::Count(4), false),
        0xB => (RangeSpec::Count(1), true),
        _ => return Err("invalid: a reserved range specifier code"),
    };
    match (prefix, range, variable) {
        (Prefix::None, _, false) => {}
        (Prefix::Index(_), RangeSpec::Count(_), false) => {}
        (Prefix::Size(_), RangeSpec::Count(_), _) => {}
        (Prefix::None, _, true) => {
            return Err("invalid: range code 0xB needs an object size prefix")
        }
        (Prefix::Index(_), _, _) => {
            return Err("invalid: an index prefix needs a count range (codes 7-9)")
        }
        (Prefix::Size(_), _, _) => {
            return Err("invalid: a size prefix needs a count range (codes 7-9, 0xB)")
        }
    }
    Ok(Qualifier { prefix, range })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_qualifiers() {
        let q = |b| decode(b).unwrap();
        assert_eq!(q(0x00).range, RangeSpec::StartStop(1));
        assert_eq!(q(0x01).range, RangeSpec::StartStop(2));
        assert_eq!(q(0x02).range, RangeSpec::StartStop(4));
        assert_eq!(q(0x06).range, RangeSpec::All);
        assert_eq!(q(0x07).range, RangeSpec::Count(1));
        assert_eq!(q(0x08).range, RangeSpec::Count(2));
        assert_eq!(q(0x09).range, RangeSpec::Count(4));
        assert_eq!(
            q(0x17),
            Qualifier {
                prefix: Prefix::Index(1),
                range: RangeSpec::Count(1)
            }
        );
        assert_eq!(
            q(0x28),
            Qualifier {
                prefix: Prefix::Index(2),
                range: RangeSpec::Count(2)
            }
        );
        assert_eq!(
            q(0x39),
            Qualifier {
                prefix: Prefix::Index(4),
                range: RangeSpec::Count(4)
            }
        );
        assert_eq!(q(0x27).prefix, Prefix::Index(2));
        assert_eq!(
            q(0x5B),
            Qualifier {
                prefix: Prefix::Size(2),
                range: RangeSpec::Count(1)
            }
        );
        assert_eq!(q(0x00).prefix, Prefix::None);
    }

    #[test]
    fn refused_qualifiers() {
        for bad in [
            0x80u8, 0x86, 0x03, 0x04, 0x05, 0x0A, 0x0B, 0x0C, 0x0F, 0x70, 0x10, 0x11, 0x16, 0x26,
            0x1B, 0x40, 0x56,
        ] {
            assert!(decode(bad).is_err(), "{bad:#04x}");
        }
        let accepted = (0..=255u8).filter(|&b| decode(b).is_ok()).count();
        // 7 no-prefix codes, 3 index prefixes x 3 counts, 3 size prefixes x 4 counts.
        assert_eq!(accepted, 7 + 9 + 12);
    }
}
