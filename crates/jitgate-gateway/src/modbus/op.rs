//! The operation record: what one request asked and what the gateway did with it.
//!
//! The gateway adds what only it knows (time, session id, device latency) and sends the
//! record to the server's event log. Everything here comes from the request bytes and the
//! verdict, so the record says exactly what the client sent even when the device never
//! saw it.

use super::allow::Verdict;
use super::request::{function_name, Request, RequestError};
use jitgate_core::scope::ModbusTable;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One Modbus request as the evidence log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub unit: u8,
    pub function: u8,
    /// `read_holding_registers`, `diagnostics`, ... (see `docs/modbus.md`).
    pub function_name: Cow<'static, str>,
    /// The table read or written; `None` for programming/diagnostics and malformed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<ModbusTable>,
    /// First address; for FC23 the read address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<u16>,
    /// For FC23 the read quantity; 1 for single writes and FC22.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u16>,
    /// FC23 only: the write range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_address: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_quantity: Option<u16>,
    /// Registers as written, coils as 0/1, FC22 as `[and_mask, or_mask]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_written: Option<Vec<u16>>,
    /// Programming/diagnostics requests only: the PDU data after the function code, in hex,
    /// because the gateway does not decode these and an auditor needs what was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_hex: Option<String>,
    pub allowed: bool,
    /// Why it was refused (or why the request was malformed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The exception code the gateway answered with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<u8>,
    /// Malformed requests only: the stable error code (`bad_quantity`, ...); the session
    /// was closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<String>,
}

impl crate::protocol::OperationRecord for Operation {
    fn allowed(&self) -> Option<bool> {
        Some(self.allowed)
    }
}

impl Operation {
    /// The record for a decoded request and the verdict given to it.
    pub fn new(unit: u8, req: &Request<'_>, verdict: &Verdict) -> Operation {
        let function = req.function();
        let (table, address, quantity, write_address, write_quantity) = match *req {
            Request::ReadCoils { address, quantity } => (
                Some(ModbusTable::Coil),
                Some(address),
                Some(quantity),
                None,
                None,
            ),
            Request::ReadDiscreteInputs { address, quantity } => (
                Some(ModbusTable::Discrete),
                Some(address),
                Some(quantity),
                None,
                None,
            ),
            Request::ReadInputRegisters { address, quantity } => (
                Some(ModbusTable::Input),
                Some(address),
                Some(quantity),
                None,
                None,
            ),
            Request::ReadHoldingRegisters { address, quantity }
            | Request::WriteMultipleRegisters {
                address, quantity, ..
            } => (
                Some(ModbusTable::Holding),
                Some(address),
                Some(quantity),
                None,
                None,
            ),
            Request::WriteSingleCoil { address, .. } => {
                (Some(ModbusTable::Coil), Some(address), Some(1), None, None)
            }
            Request::WriteMultipleCoils {
                address, quantity, ..
            } => (
                Some(ModbusTable::Coil),
                Some(address),
                Some(quantity),
                None,
                None,
            ),
            Request::WriteSingleRegister { address, .. }
            | Request::MaskWriteRegister { address, .. } => (
                Some(ModbusTable::Holding),
                Some(address),
                Some(1),
                None,
                None,
            ),
            Request::ReadWriteMultipleRegisters {
                read_address,
                read_quantity,
                write_address,
                write_quantity,
                ..
            } => (
                Some(ModbusTable::Holding),
                Some(read_address),
                Some(read_quantity),
                Some(write_address),
                Some(write_quantity),
            ),
            Request::Other { .. } => (None, None, None, None, None),
        };
        let data_hex = match req {
            Request::Other { data, .. } => Some(hex::encode(data)),
            _ => None,
        };
        let mut op = Operation {
            unit,
            function,
            function_name: Cow::Borrowed(function_name(function)),
            table,
            address,
            quantity,
            write_address,
            write_quantity,
            values_written: req.values_written(),
            data_hex,
            allowed: false,
            reason: None,
            exception: None,
            malformed: None,
        };
        op.apply(verdict);
        op
    }

    /// The record for a PDU that did not decode; the session is closed.
    pub fn malformed(unit: u8, pdu: &[u8], error: &RequestError) -> Operation {
        let function = pdu.first().copied().unwrap_or(0);
        Operation {
            unit,
            function,
            function_name: Cow::Borrowed(function_name(function)),
            table: None,
            address: None,
            quantity: None,
            write_address: None,
            write_quantity: None,
            values_written: None,
            data_hex: Some(hex::encode(pdu.get(1..).unwrap_or_default())),
            allowed: false,
            reason: Some(error.to_string()),
            exception: None,
            malformed: Some(error.code().to_string()),
        }
    }

    fn apply(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Allow => self.allowed = true,
            Verdict::Deny { exception, reason } => {
                self.reason = Some(reason.clone());
                self.exception = Some(exception.code());
            }
            Verdict::Malformed { error } => {
                self.reason = Some(error.to_string());
                self.malformed = Some(error.code().to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::allow::AllowList;
    use crate::modbus::exception::Exception;
    use crate::modbus::request::decode_request;
    use jitgate_core::scope::{ModbusOp, ScopeItem};

    fn allow() -> AllowList {
        AllowList::compile(
            "plc-7",
            &[ScopeItem::Modbus {
                asset: "plc-7".into(),
                unit: 1,
                op: ModbusOp::Write,
                table: Some(ModbusTable::Coil),
                start: 0,
                end: 15,
            }],
        )
    }

    #[test]
    fn write_multiple_coils_record() {
        let req = decode_request(&[15, 0, 2, 0, 10, 2, 0b1000_0001, 0b10]).unwrap();
        let verdict = allow().check(1, &req);
        let op = Operation::new(1, &req, &verdict);
        assert!(op.allowed);
        assert_eq!(op.function_name, "write_multiple_coils");
        assert_eq!(op.table, Some(ModbusTable::Coil));
        assert_eq!((op.address, op.quantity), (Some(2), Some(10)));
        assert_eq!(op.values_written, Some(vec![1, 0, 0, 0, 0, 0, 0, 1, 0, 1]));
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(json["table"], "coil");
        assert_eq!(json["function"], 15);
        assert!(json.get("reason").is_none());
        let back: Operation = serde_json::from_value(json).unwrap();
        assert_eq!(back, op);
    }

    #[test]
    fn denied_record_carries_reason_and_exception() {
        let req = decode_request(&[6, 0, 20, 0x12, 0x34]).unwrap();
        let verdict = allow().check(1, &req);
        let op = Operation::new(1, &req, &verdict);
        assert!(!op.allowed);
        assert_eq!(op.exception, Some(Exception::IllegalFunction.code()));
        assert_eq!(op.values_written, Some(vec![0x1234]));
        assert!(op.reason.unwrap().contains("write holding"));
    }

    #[test]
    fn programming_record_keeps_the_data() {
        let req = decode_request(&[0x2B, 0x0E, 0x01, 0x00]).unwrap();
        let op = Operation::new(1, &req, &allow().check(1, &req));
        assert_eq!(op.function_name, "encapsulated_interface_transport");
        assert_eq!(op.data_hex.as_deref(), Some("0e0100"));
        assert_eq!(op.table, None);
        assert_eq!(op.exception, Some(1));
    }

    #[test]
    fn malformed_record() {
        let pdu = [3, 0, 0, 0, 200];
        let err = decode_request(&pdu).unwrap_err();
        let op = Operation::malformed(4, &pdu, &err);
        assert_eq!(op.malformed.as_deref(), Some("bad_quantity"));
        assert_eq!(op.function, 3);
        assert!(!op.allowed);
        assert_eq!(op.exception, None);
    }
}
