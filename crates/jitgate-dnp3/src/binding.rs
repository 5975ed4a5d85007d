//! Link addresses of a session: one master and one outstation, those of the asset's
//! inventory entry (`endpoints.dnp3.master` / `.outstation`). A frame from either side with
//! other addresses, a broadcast destination, or the other side's direction bit ends the
//! session: the gateway cannot answer for an outstation it does not front, and a broadcast
//! would bypass the one-request-one-answer accounting the enforcement relies on.

use crate::link::LinkHeader;
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkBinding {
    pub master: u16,
    pub outstation: u16,
}

impl LinkBinding {
    /// A frame the master sent (DIR set, master to outstation).
    pub fn check_from_master(&self, header: &LinkHeader) -> Result<(), Error> {
        self.check(header, "master", true, self.master, self.outstation)
    }

    /// A frame the outstation sent (DIR clear, outstation to master).
    pub fn check_from_outstation(&self, header: &LinkHeader) -> Result<(), Error> {
        self.check(header, "outstation", false, self.outstation, self.master)
    }

    fn check(
        &self,
        h: &LinkHeader,
        side: &'static str,
        dir: bool,
        source: u16,
        destination: u16,
    ) -> Result<(), Error> {
        if h.control.dir != dir {
            return Err(Error::WrongDirection { side });
        }
        if h.source != source || h.destination != destination {
            return Err(Error::WrongAddress {
                side,
                from: h.source,
                to: h.destination,
                expected_from: source,
                expected_to: destination,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Control;

    fn header(control: u8, source: u16, destination: u16) -> LinkHeader {
        LinkHeader {
            control: Control::from_byte(control),
            destination,
            source,
        }
    }

    #[test]
    fn addresses_and_direction() {
        let b = LinkBinding {
            master: 1,
            outstation: 12,
        };
        assert!(b.check_from_master(&header(0xC4, 1, 12)).is_ok());
        assert!(b.check_from_outstation(&header(0x44, 12, 1)).is_ok());
        // Link-layer replies keep their side's direction bit.
        assert!(b.check_from_master(&header(0x8B, 1, 12)).is_ok());
        assert!(b.check_from_outstation(&header(0x0B, 12, 1)).is_ok());
        let wrong = [
            (header(0xC4, 2, 12), "wrong_address"),
            (header(0xC4, 1, 13), "wrong_address"),
            (header(0xC4, 1, 0xFFFF), "wrong_address"),
            (header(0xC4, 1, 0xFFFD), "wrong_address"),
            (header(0x44, 1, 12), "wrong_direction"),
        ];
        for (h, code) in wrong {
            assert_eq!(b.check_from_master(&h).unwrap_err().code(), code, "{h:?}");
        }
        let err = b.check_from_master(&header(0xC4, 1, 0xFFFF)).unwrap_err();
        assert!(err.to_string().contains("65535"), "{err}");
        assert_eq!(
            b.check_from_outstation(&header(0xC4, 12, 1))
                .unwrap_err()
                .code(),
            "wrong_direction"
        );
    }
}
