//! Application fragments into typed summaries: the function and, per object header, the
//! group, variation, qualifier, point kind, the indexes it touches and any commands it
//! carries.
//!
//! Whether object data follows a header depends on the function: a READ (and the freeze,
//! unsolicited and assign-class requests) names points without values; a WRITE, a control
//! request or a response carries one object per point named. Every count and range is
//! checked against the limits and against the bytes actually present before anything is
//! allocated, so a header cannot make the parser reserve more than the fragment holds.

#![deny(clippy::indexing_slicing)]

use crate::control::{decode_analog, Command, Crob};
use crate::function::FunctionCode;
use crate::header::{parse_request_header, parse_response_header, AppControl, Iin};
use crate::objects::{lookup, ObjectInfo, PointKind, Role, Size};
use crate::qualifier::{self, Prefix, RangeSpec};
use crate::Error;

/// Bounds on what one fragment may ask of the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest fragment, in bytes (also the reassembler's limit).
    pub max_fragment: usize,
    /// Most object headers in one fragment.
    pub max_objects: usize,
    /// Most points one object header may name by range or count.
    pub max_points: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_fragment: crate::transport::DEFAULT_MAX_FRAGMENT,
            max_objects: 256,
            // The whole 16-bit index space: ranges the scope language can name, and no more.
            max_points: 65_536,
        }
    }
}

/// The indexes an object header touches, as the qualifier states them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Indexes {
    /// Qualifier 0x06: every point of the type.
    All,
    /// Start-stop qualifiers (0x00-0x02): inclusive, `start <= stop`.
    Range { start: u32, stop: u32 },
    /// A bare count (0x07-0x09, 0x5B): how many objects, with no index said.
    Count(u32),
    /// Index-prefixed objects (0x17, 0x28, 0x39...), in the order sent.
    List(Vec<u32>),
}

/// One object header of a fragment.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectHeader {
    pub group: u8,
    pub variation: u8,
    pub qualifier: u8,
    pub kind: PointKind,
    pub role: Role,
    pub indexes: Indexes,
    /// The CROBs and analog output blocks it carries, in order.
    pub commands: Vec<Command>,
}

/// A request fragment.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    pub control: AppControl,
    pub function: FunctionCode,
    pub headers: Vec<ObjectHeader>,
    /// The bytes after the application header: what a SELECT and its OPERATE must share.
    pub objects: &'a [u8],
}

/// A response or unsolicited response fragment.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub control: AppControl,
    pub function: FunctionCode,
    pub iin: Iin,
    pub headers: Vec<ObjectHeader>,
}

/// Parse a request fragment (master to outstation).
pub fn parse_request<'a>(fragment: &'a [u8], limits: &Limits) -> Result<Request<'a>, Error> {
    check_size(fragment, limits)?;
    let (control, code, objects) = parse_request_header(fragment)?;
    let function = FunctionCode::from_u8(code).ok_or(Error::UnknownFunction { function: code })?;
    if function.is_response() {
        return Err(Error::NotARequest { function: code });
    }
    if function == FunctionCode::Confirm && !objects.is_empty() {
        return Err(Error::UnexpectedObjects {
            function: function.name(),
        });
    }
    let headers = walk(objects, Some(function), limits)?;
    Ok(Request {
        control,
        function,
        headers,
        objects,
    })
}

/// Parse a response fragment (outstation to master).
pub fn parse_response(fragment: &[u8], limits: &Limits) -> Result<Response, Error> {
    check_size(fragment, limits)?;
    let (control, function, iin, objects) = parse_response_header(fragment)?;
    let headers = walk(objects, None, limits)?;
    Ok(Response {
        control,
        function,
        iin,
        headers,
    })
}

fn check_size(fragment: &[u8], limits: &Limits) -> Result<(), Error> {
    if fragment.len() > limits.max_fragment {
        return Err(Error::FragmentTooLarge {
            limit: limits.max_fragment,
        });
    }
    Ok(())
}

/// Whether objects of `group` carry data in a request of `function` (`None`: a response).
fn carries_data(function: Option<FunctionCode>, group: u8) -> bool {
    use FunctionCode::*;
    match function {
        None => true,
        // A READ of file transport (g70v5, the handle and block number) carries its object,
        // size-prefixed (IEEE 1815 file transfer; seen in public captures).
        Some(Read) => group == 70,
        Some(
            ImmediateFreeze | ImmediateFreezeNoAck | FreezeClear | FreezeClearNoAck
            | EnableUnsolicited | DisableUnsolicited | AssignClass,
        ) => false,
        // The time to freeze at (group 50) has a value; the counters named after it do not.
        Some(FreezeAtTime | FreezeAtTimeNoAck) => group == 50,
        Some(_) => true,
    }
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let (head, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or(Error::Truncated { what })?;
        self.rest = rest;
        Ok(head)
    }

    /// A little-endian unsigned integer of `width` (1, 2 or 4) bytes.
    fn uint(&mut self, width: u8, what: &'static str) -> Result<u32, Error> {
        let bytes = self.take(usize::from(width), what)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u32, |acc, &b| acc << 8 | u32::from(b)))
    }
}

/// What one header is walked with.
struct Head {
    group: u8,
    variation: u8,
    qualifier: u8,
    info: ObjectInfo,
}

impl Head {
    fn bad_qualifier(&self, why: &'static str) -> Error {
        Error::BadQualifier {
            group: self.group,
            variation: self.variation,
            qualifier: self.qualifier,
            why,
        }
    }

    /// Refuse before reading when `needed` bytes of objects are not all there.
    fn need(&self, cur: &Cursor<'_>, needed: u64) -> Result<(), Error> {
        if needed > cur.rest.len() as u64 {
            return Err(Error::CountMismatch {
                group: self.group,
                variation: self.variation,
                needed,
                remaining: cur.rest.len(),
            });
        }
        Ok(())
    }

    fn take<'a>(&self, cur: &mut Cursor<'a>, n: usize) -> Result<&'a [u8], Error> {
        self.need(cur, n as u64)?;
        cur.take(n, "object data")
    }

    fn command(&self, index: Option<u32>, data: &[u8]) -> Option<Command> {
        match (self.group, self.info.role) {
            (12, Role::Command) => {
                let crob = Crob::decode(data.try_into().ok()?);
                Some(Command::Crob { index, crob })
            }
            (41, Role::Command) => {
                let (value, status) = decode_analog(self.variation, data)?;
                Some(Command::Analog {
                    index,
                    value,
                    status,
                })
            }
            _ => None,
        }
    }
}

fn walk(
    objects: &[u8],
    function: Option<FunctionCode>,
    limits: &Limits,
) -> Result<Vec<ObjectHeader>, Error> {
    let mut cur = Cursor { rest: objects };
    let mut headers = Vec::new();
    while !cur.rest.is_empty() {
        if headers.len() >= limits.max_objects {
            return Err(Error::TooManyObjects {
                limit: limits.max_objects,
            });
        }
        let Some(&[group, variation, qualifier]) =
            cur.take(3, "an object header")?.first_chunk::<3>()
        else {
            return Err(Error::Truncated {
                what: "an object header",
            });
        };
        let info = lookup(group, variation).ok_or(Error::UnknownObject { group, variation })?;
        let head = Head {
            group,
            variation,
            qualifier,
            info,
        };
        let q = qualifier::decode(qualifier).map_err(|why| head.bad_qualifier(why))?;
        let (indexes, count) = match q.range {
            RangeSpec::StartStop(w) => {
                let start = cur.uint(w, "a range")?;
                let stop = cur.uint(w, "a range")?;
                if stop < start {
                    return Err(Error::RangeOverflow {
                        group,
                        variation,
                        start,
                        stop,
                    });
                }
                (Indexes::Range { start, stop }, u64::from(stop - start) + 1)
            }
            RangeSpec::All => (Indexes::All, 0),
            RangeSpec::Count(w) => {
                let n = cur.uint(w, "a count")?;
                (Indexes::Count(n), u64::from(n))
            }
        };
        if count > u64::from(limits.max_points) {
            return Err(Error::TooManyPoints {
                group,
                variation,
                count,
                limit: limits.max_points,
            });
        }
        let data = carries_data(function, group) && info.size != Size::NoData;
        let (indexes, commands) = if data {
            with_data(&head, &mut cur, q.prefix, indexes, count)?
        } else {
            (
                without_data(&head, &mut cur, q.prefix, indexes, count)?,
                Vec::new(),
            )
        };
        headers.push(ObjectHeader {
            group,
            variation,
            qualifier,
            kind: info.kind,
            role: info.role,
            indexes,
            commands,
        });
    }
    Ok(headers)
}

/// A header naming points without values: the range itself, or a list of indexes.
fn without_data(
    head: &Head,
    cur: &mut Cursor<'_>,
    prefix: Prefix,
    indexes: Indexes,
    count: u64,
) -> Result<Indexes, Error> {
    match prefix {
        Prefix::None => Ok(indexes),
        Prefix::Index(w) => {
            head.need(cur, count * u64::from(w))?;
            let list = (0..count)
                .map(|_| cur.uint(w, "an index"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Indexes::List(list))
        }
        Prefix::Size(_) => Err(head.bad_qualifier("a size prefix on objects without data")),
    }
}

type Walked = (Indexes, Vec<Command>);

/// A header followed by one object per point: skip (and decode commands in) the data.
fn with_data(
    head: &Head,
    cur: &mut Cursor<'_>,
    prefix: Prefix,
    indexes: Indexes,
    count: u64,
) -> Result<Walked, Error> {
    if indexes == Indexes::All {
        return Err(head.bad_qualifier("\"all objects\" where object data must follow"));
    }
    let first = match indexes {
        Indexes::Range { start, .. } => Some(start),
        _ => None,
    };
    let mut commands = Vec::new();
    match (head.info.size, prefix) {
        (Size::AnyVariation | Size::NoData, _) => Err(Error::UnknownObject {
            group: head.group,
            variation: head.variation,
        }),
        (Size::Bits(bits), Prefix::None) => {
            let bytes = (count * u64::from(bits)).div_ceil(8);
            head.need(cur, bytes)?;
            cur.take(bytes as usize, "packed bits")?;
            Ok((indexes, commands))
        }
        (Size::Bits(_), _) => Err(head.bad_qualifier("packed bit objects cannot be prefixed")),
        (Size::Fixed(n), Prefix::None) => {
            head.need(cur, count * u64::from(n))?;
            for i in 0..count {
                let data = cur.take(usize::from(n), "object data")?;
                let index = first.and_then(|s| s.checked_add(u32::try_from(i).ok()?));
                commands.extend(head.command(index, data));
            }
            Ok((indexes, commands))
        }
        (Size::Fixed(n), Prefix::Index(w)) => {
            head.need(cur, count * (u64::from(w) + u64::from(n)))?;
            let mut list = Vec::new();
            for _ in 0..count {
                let index = cur.uint(w, "an index")?;
                let data = cur.take(usize::from(n), "object data")?;
                list.push(index);
                commands.extend(head.command(Some(index), data));
            }
            Ok((Indexes::List(list), commands))
        }
        (Size::Fixed(_), Prefix::Size(_)) => {
            Err(head.bad_qualifier("a size prefix on objects of fixed size"))
        }
        (Size::FreeFormat, Prefix::Size(w)) => {
            head.need(cur, count * u64::from(w))?;
            for _ in 0..count {
                let size = cur.uint(w, "an object size")?;
                head.take(cur, size as usize)?;
            }
            Ok((indexes, commands))
        }
        (Size::FreeFormat, _) => {
            Err(head.bad_qualifier("free-format objects need a size prefix (such as 0x5B)"))
        }
        (Size::Attribute, Prefix::Size(_)) => {
            Err(head.bad_qualifier("a size prefix on device attributes"))
        }
        (Size::Attribute, prefix) => {
            // Each attribute: [index], data type code, length, value.
            let width = match prefix {
                Prefix::Index(w) => u64::from(w),
                _ => 0,
            };
            head.need(cur, count * (width + 2))?;
            let mut list = Vec::new();
            for _ in 0..count {
                if let Prefix::Index(w) = prefix {
                    list.push(cur.uint(w, "an index")?);
                }
                let len = head.take(cur, 2)?.get(1).copied().unwrap_or(0);
                head.take(cur, usize::from(len))?;
            }
            let indexes = if width > 0 {
                Indexes::List(list)
            } else {
                indexes
            };
            Ok((indexes, commands))
        }
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
