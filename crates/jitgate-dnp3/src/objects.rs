//! The object groups and variations jitgate understands: what point type each one is about,
//! and how many bytes one object takes, so the object data after a header can be walked.
//!
//! Sizes are IEEE 1815's (flags octet included where the variation has one; times are 48-bit
//! milliseconds, relative times 16-bit). A group/variation not in this table cannot be
//! walked past — its size is unknown — so a request naming one is answered "object unknown"
//! rather than guessed at.

/// Which kind of point an object is about; what scope rules are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PointKind {
    /// Class data (group 60): 0 = static, 1-3 = event classes.
    Class(u8),
    BinaryInput,
    BinaryOutput,
    AnalogInput,
    AnalogOutput,
    Counter,
    /// Time and date, time delays, common time of occurrence (groups 50-52).
    Time,
    /// Everything else this table knows: device attributes, double-bit inputs, deadbands,
    /// files, internal indications.
    Other,
}

impl PointKind {
    pub fn name(self) -> &'static str {
        match self {
            PointKind::Class(_) => "class",
            PointKind::BinaryInput => "binary-input",
            PointKind::BinaryOutput => "binary-output",
            PointKind::AnalogInput => "analog-input",
            PointKind::AnalogOutput => "analog-output",
            PointKind::Counter => "counter",
            PointKind::Time => "time",
            PointKind::Other => "other",
        }
    }
}

/// What an object of a point type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Current (or frozen) value of the point with that index.
    Static,
    /// A change event; a request for events returns those of *any* index.
    Event,
    /// A control command (CROB, analog output block).
    Command,
}

/// How the data of one object is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    /// Packed bits, this many per object (single-bit binaries, double-bit inputs, IIN).
    Bits(u8),
    /// This many bytes per object.
    Fixed(u8),
    /// No object data ever (class objects).
    NoData,
    /// Variation 0, "any variation": only valid where no data follows (reads).
    AnyVariation,
    /// Each object carries its own length in a size prefix (files).
    FreeFormat,
    /// Device attributes: data type, length, value.
    Attribute,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectInfo {
    pub kind: PointKind,
    pub role: Role,
    pub size: Size,
}

fn info(kind: PointKind, role: Role, size: Size) -> Option<ObjectInfo> {
    Some(ObjectInfo { kind, role, size })
}

/// Bytes per variation, starting at variation 1 (variation 0 is "any").
fn sized(kind: PointKind, role: Role, variation: u8, sizes: &[u8]) -> Option<ObjectInfo> {
    if variation == 0 {
        return info(kind, role, Size::AnyVariation);
    }
    let size = *sizes.get(usize::from(variation) - 1)?;
    info(kind, role, Size::Fixed(size))
}

/// One flags octet, one flags octet + 48-bit time, one flags octet + 16-bit relative time.
const BINARY_EVENTS: &[u8] = &[1, 7, 3];
/// 32/16-bit with flags, 32/16-bit with flags and time, then float and double variants.
const ANALOG_EVENTS: &[u8] = &[5, 3, 11, 9, 5, 9, 11, 15];
const COUNTER_EVENTS: &[u8] = &[5, 3, 5, 3, 11, 9, 11, 9];

/// What jitgate knows of group `group`, variation `variation`.
pub fn lookup(group: u8, variation: u8) -> Option<ObjectInfo> {
    use PointKind::*;
    use Role::*;
    let bits = |kind, role| match variation {
        0 => info(kind, role, Size::AnyVariation),
        1 => info(kind, role, Size::Bits(1)),
        2 => info(kind, role, Size::Fixed(1)),
        _ => None,
    };
    match group {
        0 if variation != 0 => info(Other, Static, Size::Attribute),
        1 => bits(BinaryInput, Static),
        2 => sized(BinaryInput, Event, variation, BINARY_EVENTS),
        3 => match variation {
            0 => info(Other, Static, Size::AnyVariation),
            1 => info(Other, Static, Size::Bits(2)),
            2 => info(Other, Static, Size::Fixed(1)),
            _ => None,
        },
        4 => sized(Other, Event, variation, BINARY_EVENTS),
        10 => bits(BinaryOutput, Static),
        11 => sized(BinaryOutput, Event, variation, &[1, 7]),
        // Only the CROB: pattern control blocks and masks (v2, v3) address outputs by bit
        // position within a range, which the scope language has no way to say.
        12 if variation == 1 => info(BinaryOutput, Command, Size::Fixed(11)),
        13 => sized(BinaryOutput, Event, variation, &[1, 7]),
        20 => sized(Counter, Static, variation, &[5, 3, 5, 3, 4, 2, 4, 2]),
        21 => sized(
            Counter,
            Static,
            variation,
            &[5, 3, 5, 3, 11, 9, 11, 9, 4, 2, 4, 2],
        ),
        22 | 23 => sized(Counter, Event, variation, COUNTER_EVENTS),
        30 => sized(AnalogInput, Static, variation, &[5, 3, 4, 2, 5, 9]),
        31 => sized(AnalogInput, Static, variation, &[5, 3, 11, 9, 4, 2, 5, 9]),
        32 | 33 => sized(AnalogInput, Event, variation, ANALOG_EVENTS),
        34 => sized(Other, Static, variation, &[2, 4, 4]),
        40 => sized(AnalogOutput, Static, variation, &[5, 3, 5, 9]),
        41 if variation != 0 => sized(AnalogOutput, Command, variation, &[5, 3, 5, 9]),
        42 | 43 => sized(AnalogOutput, Event, variation, ANALOG_EVENTS),
        50 if variation != 0 => sized(Time, Static, variation, &[6, 10, 6, 11]),
        51 if variation != 0 => sized(Time, Static, variation, &[6, 6]),
        52 if variation != 0 => sized(Time, Static, variation, &[2, 2]),
        60 if (1..=4).contains(&variation) => info(Class(variation - 1), Static, Size::NoData),
        70 if (2..=7).contains(&variation) => info(Other, Static, Size::FreeFormat),
        80 if variation == 1 => info(Other, Static, Size::Bits(1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(g: u8, v: u8) -> Size {
        lookup(g, v).unwrap().size
    }

    #[test]
    fn sizes_from_the_standard() {
        assert_eq!(size(1, 1), Size::Bits(1));
        assert_eq!(size(1, 2), Size::Fixed(1));
        assert_eq!(size(2, 2), Size::Fixed(7));
        assert_eq!(size(12, 1), Size::Fixed(11));
        assert_eq!(size(20, 1), Size::Fixed(5));
        assert_eq!(size(20, 6), Size::Fixed(2));
        assert_eq!(size(21, 5), Size::Fixed(11));
        assert_eq!(size(30, 5), Size::Fixed(5));
        assert_eq!(size(30, 6), Size::Fixed(9));
        assert_eq!(size(32, 8), Size::Fixed(15));
        assert_eq!(size(41, 1), Size::Fixed(5));
        assert_eq!(size(41, 2), Size::Fixed(3));
        assert_eq!(size(41, 4), Size::Fixed(9));
        assert_eq!(size(50, 1), Size::Fixed(6));
        assert_eq!(size(52, 2), Size::Fixed(2));
        assert_eq!(size(80, 1), Size::Bits(1));
        assert_eq!(size(60, 1), Size::NoData);
        assert_eq!(size(30, 0), Size::AnyVariation);
    }

    #[test]
    fn kinds() {
        assert_eq!(lookup(60, 1).unwrap().kind, PointKind::Class(0));
        assert_eq!(lookup(60, 4).unwrap().kind, PointKind::Class(3));
        assert_eq!(lookup(12, 1).unwrap().role, Role::Command);
        assert_eq!(lookup(41, 3).unwrap().kind, PointKind::AnalogOutput);
        assert_eq!(lookup(32, 1).unwrap().role, Role::Event);
        assert_eq!(lookup(21, 1).unwrap().kind, PointKind::Counter);
        assert_eq!(lookup(50, 1).unwrap().kind, PointKind::Time);
    }

    #[test]
    fn unknown_objects() {
        for (g, v) in [
            (0, 0),
            (1, 3),
            (12, 0),
            (12, 2),
            (12, 3),
            (41, 0),
            (41, 5),
            (60, 0),
            (60, 5),
            (80, 2),
            (120, 1),
            (110, 4),
            (255, 255),
            (30, 7),
            (50, 0),
        ] {
            assert_eq!(lookup(g, v), None, "g{g}v{v}");
        }
    }
}
