//! Application layer function codes (IEEE 1815 clause 4.2.2.5 and table 4-..., all of them).

/// Every function code IEEE 1815 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum FunctionCode {
    Confirm = 0x00,
    Read = 0x01,
    Write = 0x02,
    Select = 0x03,
    Operate = 0x04,
    DirectOperate = 0x05,
    DirectOperateNoAck = 0x06,
    ImmediateFreeze = 0x07,
    ImmediateFreezeNoAck = 0x08,
    FreezeClear = 0x09,
    FreezeClearNoAck = 0x0A,
    FreezeAtTime = 0x0B,
    FreezeAtTimeNoAck = 0x0C,
    ColdRestart = 0x0D,
    WarmRestart = 0x0E,
    InitializeData = 0x0F,
    InitializeApplication = 0x10,
    StartApplication = 0x11,
    StopApplication = 0x12,
    SaveConfiguration = 0x13,
    EnableUnsolicited = 0x14,
    DisableUnsolicited = 0x15,
    AssignClass = 0x16,
    DelayMeasurement = 0x17,
    RecordCurrentTime = 0x18,
    OpenFile = 0x19,
    CloseFile = 0x1A,
    DeleteFile = 0x1B,
    GetFileInfo = 0x1C,
    AuthenticateFile = 0x1D,
    AbortFile = 0x1E,
    ActivateConfig = 0x1F,
    /// Secure authentication request (challenge, reply, key change...).
    AuthenticateRequest = 0x20,
    /// Secure authentication request that must not be answered (carries errors).
    AuthenticateRequestNoAck = 0x21,
    Response = 0x81,
    UnsolicitedResponse = 0x82,
    AuthenticateResponse = 0x83,
}

impl FunctionCode {
    pub fn from_u8(code: u8) -> Option<FunctionCode> {
        use FunctionCode::*;
        const REQUESTS: [FunctionCode; 34] = [
            Confirm,
            Read,
            Write,
            Select,
            Operate,
            DirectOperate,
            DirectOperateNoAck,
            ImmediateFreeze,
            ImmediateFreezeNoAck,
            FreezeClear,
            FreezeClearNoAck,
            FreezeAtTime,
            FreezeAtTimeNoAck,
            ColdRestart,
            WarmRestart,
            InitializeData,
            InitializeApplication,
            StartApplication,
            StopApplication,
            SaveConfiguration,
            EnableUnsolicited,
            DisableUnsolicited,
            AssignClass,
            DelayMeasurement,
            RecordCurrentTime,
            OpenFile,
            CloseFile,
            DeleteFile,
            GetFileInfo,
            AuthenticateFile,
            AbortFile,
            ActivateConfig,
            AuthenticateRequest,
            AuthenticateRequestNoAck,
        ];
        match code {
            0x81 => Some(Response),
            0x82 => Some(UnsolicitedResponse),
            0x83 => Some(AuthenticateResponse),
            _ => REQUESTS.get(usize::from(code)).copied(),
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    /// Sent by an outstation (0x81-0x83).
    pub fn is_response(self) -> bool {
        self.code() >= 0x81
    }

    /// False for the functions the outstation must not answer: the `_NR` variants, the
    /// confirm, and the no-ack authentication request. A refusal of one of these is logged,
    /// and nothing is sent back.
    pub fn expects_response(self) -> bool {
        use FunctionCode::*;
        !matches!(
            self,
            Confirm
                | DirectOperateNoAck
                | ImmediateFreezeNoAck
                | FreezeClearNoAck
                | FreezeAtTimeNoAck
                | AuthenticateRequestNoAck
        ) && !self.is_response()
    }

    /// The name the operation log records, in IEEE 1815's own spelling.
    pub fn name(self) -> &'static str {
        use FunctionCode::*;
        match self {
            Confirm => "CONFIRM",
            Read => "READ",
            Write => "WRITE",
            Select => "SELECT",
            Operate => "OPERATE",
            DirectOperate => "DIRECT_OPERATE",
            DirectOperateNoAck => "DIRECT_OPERATE_NR",
            ImmediateFreeze => "IMMED_FREEZE",
            ImmediateFreezeNoAck => "IMMED_FREEZE_NR",
            FreezeClear => "FREEZE_CLEAR",
            FreezeClearNoAck => "FREEZE_CLEAR_NR",
            FreezeAtTime => "FREEZE_AT_TIME",
            FreezeAtTimeNoAck => "FREEZE_AT_TIME_NR",
            ColdRestart => "COLD_RESTART",
            WarmRestart => "WARM_RESTART",
            InitializeData => "INITIALIZE_DATA",
            InitializeApplication => "INITIALIZE_APPL",
            StartApplication => "START_APPL",
            StopApplication => "STOP_APPL",
            SaveConfiguration => "SAVE_CONFIG",
            EnableUnsolicited => "ENABLE_UNSOLICITED",
            DisableUnsolicited => "DISABLE_UNSOLICITED",
            AssignClass => "ASSIGN_CLASS",
            DelayMeasurement => "DELAY_MEASURE",
            RecordCurrentTime => "RECORD_CURRENT_TIME",
            OpenFile => "OPEN_FILE",
            CloseFile => "CLOSE_FILE",
            DeleteFile => "DELETE_FILE",
            GetFileInfo => "GET_FILE_INFO",
            AuthenticateFile => "AUTHENTICATE_FILE",
            AbortFile => "ABORT_FILE",
            ActivateConfig => "ACTIVATE_CONFIG",
            AuthenticateRequest => "AUTHENTICATE_REQ",
            AuthenticateRequestNoAck => "AUTH_REQ_NO_ACK",
            Response => "RESPONSE",
            UnsolicitedResponse => "UNSOLICITED_RESPONSE",
            AuthenticateResponse => "AUTHENTICATE_RESP",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_code_round_trips_and_nothing_else_exists() {
        let mut defined = 0;
        for code in 0..=255u8 {
            match FunctionCode::from_u8(code) {
                Some(f) => {
                    defined += 1;
                    assert_eq!(f.code(), code);
                    assert_eq!(f.is_response(), code >= 0x81);
                }
                None => assert!((0x22..=0x80).contains(&code) || code > 0x83, "{code:#x}"),
            }
        }
        assert_eq!(defined, 37);
    }

    #[test]
    fn no_ack_functions_expect_no_response() {
        for f in [0x00u8, 0x06, 0x08, 0x0A, 0x0C, 0x21, 0x81, 0x82, 0x83] {
            assert!(
                !FunctionCode::from_u8(f).unwrap().expects_response(),
                "{f:#x}"
            );
        }
        for f in [0x01u8, 0x02, 0x03, 0x04, 0x05, 0x0D, 0x14, 0x17, 0x20] {
            assert!(
                FunctionCode::from_u8(f).unwrap().expects_response(),
                "{f:#x}"
            );
        }
        assert_eq!(FunctionCode::DirectOperateNoAck.name(), "DIRECT_OPERATE_NR");
    }
}
