//! The operation record: what one DNP3 request (or link frame, or unsolicited response)
//! said and what the gateway did with it, for the evidence log.
//!
//! Everything comes from the bytes and the verdict, so the record says exactly what the
//! master sent even when the outstation never saw it. Lists are capped
//! ([`MAX_LISTED`]) so that one fragment naming thousands of indexes cannot make one event
//! large; the cap is stated in the record.

use jitgate_dnp3::control::Command;
use jitgate_dnp3::parse::{Indexes, ObjectHeader};
use jitgate_dnp3::{FunctionCode, Iin, PointKind, Role};
use serde::{Deserialize, Serialize};

/// Indexes and commands listed per object header before the rest is only counted.
pub const MAX_LISTED: usize = 64;

/// One DNP3 operation as the evidence log records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// `master` (a request or link frame it sent) or `outstation` (an unsolicited response).
    pub direction: String,
    /// Link-layer frames only: the link function (`RESET_LINK_STATES`, `ACK`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The application function code and its IEEE 1815 name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
    /// The application sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u8>,
    /// Object headers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectRecord>,
    /// The request came as link-layer confirmed user data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link_confirmed: bool,
    pub allowed: bool,
    /// Why it was refused (or why it was malformed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The IIN2 bit the gateway's refusal carried; `None` if it answered nothing (an `_NR`
    /// function) or did not refuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal_iin2: Option<u8>,
    /// Unsolicited responses: the outstation's IIN bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iin: Option<[u8; 2]>,
    /// Objects the parser does not know: for an unsolicited response (relayed all the
    /// same) the parser's error code; for a request (refused) the code and what it names
    /// (`unknown_object: group 120 variation 1 ...`), the objects then not being listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects_unparsed: Option<String>,
    /// Malformed requests only: the stable error code; the session was closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<String>,
}

/// One object header: group, variation, qualifier and the points it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub group: u8,
    pub variation: u8,
    pub qualifier: u8,
    /// `analog-input`, `binary-output events`, `class 1`, ...
    pub kind: String,
    /// Start-stop qualifiers: the inclusive range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[u32; 2]>,
    /// Qualifier 0x06: every point.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// Count qualifiers and lists: how many objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Index-prefixed objects: the indexes, the first [`MAX_LISTED`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<u32>,
    /// CROBs and analog output blocks, the first [`MAX_LISTED`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandRecord>,
}

/// One control command as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// CROBs: the control code byte and its reading (`LATCH_ON`, `PULSE_ON/CLOSE`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_ms: Option<u32>,
    /// Analog output blocks: the value as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl ObjectRecord {
    pub fn new(h: &ObjectHeader) -> ObjectRecord {
        let kind = match (h.kind, h.role) {
            (PointKind::Class(c), _) => format!("class {c}"),
            (kind, Role::Event) => format!("{} events", kind.name()),
            (kind, Role::Command) => format!("{} commands", kind.name()),
            (kind, Role::Static) => kind.name().to_string(),
        };
        let mut rec = ObjectRecord {
            group: h.group,
            variation: h.variation,
            qualifier: h.qualifier,
            kind,
            range: None,
            all: false,
            count: None,
            indexes: Vec::new(),
            commands: h
                .commands
                .iter()
                .take(MAX_LISTED)
                .map(CommandRecord::new)
                .collect(),
        };
        match &h.indexes {
            Indexes::All => rec.all = true,
            Indexes::Range { start, stop } => rec.range = Some([*start, *stop]),
            Indexes::Count(n) => rec.count = Some(*n),
            Indexes::List(list) => {
                rec.count = Some(u32::try_from(list.len()).unwrap_or(u32::MAX));
                rec.indexes = list.iter().take(MAX_LISTED).copied().collect();
            }
        }
        rec
    }
}

impl CommandRecord {
    fn new(c: &Command) -> CommandRecord {
        let mut rec = CommandRecord {
            index: c.index(),
            code: None,
            control: None,
            count: None,
            on_ms: None,
            off_ms: None,
            value: None,
        };
        match c {
            Command::Crob { crob, .. } => {
                rec.code = Some(crob.code);
                rec.control = Some(crob.describe());
                rec.count = Some(crob.count);
                rec.on_ms = Some(crob.on_ms);
                rec.off_ms = Some(crob.off_ms);
            }
            Command::Analog { value, .. } => rec.value = Some(value.to_string()),
        }
        rec
    }
}

impl crate::protocol::OperationRecord for Operation {
    fn allowed(&self) -> Option<bool> {
        Some(self.allowed)
    }
}

impl Operation {
    fn empty(direction: &str) -> Operation {
        Operation {
            direction: direction.into(),
            link: None,
            function: None,
            function_name: None,
            seq: None,
            objects: Vec::new(),
            link_confirmed: false,
            allowed: false,
            reason: None,
            refusal_iin2: None,
            iin: None,
            objects_unparsed: None,
            malformed: None,
        }
    }

    /// A request fragment: its function (the raw code when it is not one IEEE 1815
    /// defines), sequence and objects (empty when they did not parse).
    pub fn request(
        code: Option<u8>,
        seq: Option<u8>,
        headers: &[ObjectHeader],
        link_confirmed: bool,
    ) -> Operation {
        let mut op = Operation::empty("master");
        op.function = code;
        op.function_name = code
            .and_then(FunctionCode::from_u8)
            .map(|f| f.name().to_string());
        op.seq = seq;
        op.objects = headers.iter().map(ObjectRecord::new).collect();
        op.link_confirmed = link_confirmed;
        op
    }

    /// A link-layer frame from the master (no application data).
    pub fn link(name: &str) -> Operation {
        let mut op = Operation::empty("master");
        op.link = Some(name.into());
        op
    }

    /// An unsolicited response the outstation sent; relayed.
    pub fn unsolicited(seq: u8, iin: Iin, headers: &[ObjectHeader]) -> Operation {
        let mut op = Operation::empty("outstation");
        op.function = Some(FunctionCode::UnsolicitedResponse.code());
        op.function_name = Some(FunctionCode::UnsolicitedResponse.name().into());
        op.seq = Some(seq);
        op.iin = Some([iin.iin1, iin.iin2]);
        op.objects = headers.iter().map(ObjectRecord::new).collect();
        op.allowed = true;
        op
    }

    pub fn allowed(mut self) -> Operation {
        self.allowed = true;
        self
    }

    pub fn refused(mut self, reason: String, iin2: Option<u8>) -> Operation {
        self.allowed = false;
        self.reason = Some(reason);
        self.refusal_iin2 = iin2;
        self
    }

    pub fn malformed(mut self, code: &str, reason: String) -> Operation {
        self.allowed = false;
        self.reason = Some(reason);
        self.malformed = Some(code.into());
        self
    }
}

/// The IEEE 1815 name of a link function, by direction of the frame (PRM).
pub fn link_function_name(prm: bool, function: u8) -> &'static str {
    use jitgate_dnp3::link::function as f;
    match (prm, function) {
        (true, f::RESET_LINK_STATES) => "RESET_LINK_STATES",
        (true, f::TEST_LINK_STATES) => "TEST_LINK_STATES",
        (true, f::CONFIRMED_USER_DATA) => "CONFIRMED_USER_DATA",
        (true, f::UNCONFIRMED_USER_DATA) => "UNCONFIRMED_USER_DATA",
        (true, f::REQUEST_LINK_STATUS) => "REQUEST_LINK_STATUS",
        (false, f::ACK) => "ACK",
        (false, f::NACK) => "NACK",
        (false, f::LINK_STATUS) => "LINK_STATUS",
        (false, f::NOT_SUPPORTED) => "NOT_SUPPORTED",
        _ => "UNDEFINED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jitgate_dnp3::parse::{parse_request, Limits};

    #[test]
    fn a_select_record_lists_its_commands() {
        let bytes = [
            0xC3, 0x03, 12, 1, 0x17, 2, 3, 0x41, 1, 0xE8, 0x03, 0, 0, 0, 0, 0, 0, 0, 4, 0x04, 1, 0,
            0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let req = parse_request(&bytes, &Limits::default()).unwrap();
        let op = Operation::request(Some(3), Some(3), &req.headers, false).allowed();
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(json["function_name"], "SELECT");
        assert_eq!(json["direction"], "master");
        assert_eq!(json["objects"][0]["kind"], "binary-output commands");
        assert_eq!(json["objects"][0]["indexes"], serde_json::json!([3, 4]));
        let c = &json["objects"][0]["commands"];
        assert_eq!(c[0]["control"], "PULSE_ON/CLOSE");
        assert_eq!(c[0]["on_ms"], 1000);
        assert_eq!(c[1]["control"], "LATCH_OFF");
        assert!(json.get("reason").is_none() && json.get("link_confirmed").is_none());
        let back: Operation = serde_json::from_value(json).unwrap();
        assert_eq!(back, op);
    }

    #[test]
    fn long_lists_are_capped_and_counted() {
        let mut bytes = vec![0xC1, 0x01, 30, 0, 0x28, 0, 1];
        for i in 0..256u16 {
            bytes.extend(i.to_le_bytes());
        }
        let req = parse_request(&bytes, &Limits::default()).unwrap();
        let op = Operation::request(Some(1), Some(1), &req.headers, false)
            .refused("outside".into(), Some(4));
        assert_eq!(op.objects[0].indexes.len(), MAX_LISTED);
        assert_eq!(op.objects[0].count, Some(256));
        assert_eq!(op.refusal_iin2, Some(4));
    }
}
