//! A minimal Modbus/TCP client built on the crate's own framing, for load and edge cases
//! the real clients cannot produce (pipelining, malformed frames).

use jitgate_gateway::modbus::{encode_adu, parse_adu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Client {
    pub stream: TcpStream,
    next_tid: u16,
    buf: Vec<u8>,
}

/// One response: transaction id, unit id, PDU.
pub type Response = (u16, u8, Vec<u8>);

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            next_tid: 1,
            buf: Vec::new(),
        }
    }

    /// Send `pdu` to `unit`; returns the transaction id used.
    pub async fn send(&mut self, unit: u8, pdu: &[u8]) -> u16 {
        let tid = self.next_tid;
        self.next_tid = self.next_tid.wrapping_add(1);
        let mut out = Vec::new();
        encode_adu(tid, unit, pdu, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
        tid
    }

    /// The next response, or `None` when the peer closed the connection.
    pub async fn recv(&mut self) -> Option<Response> {
        loop {
            if let Some((adu, used)) = parse_adu(&self.buf).unwrap() {
                let r = (adu.transaction_id, adu.unit_id, adu.pdu.to_vec());
                self.buf.drain(..used);
                return Some(r);
            }
            let mut chunk = [0u8; 1024];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Send and wait for the answer's PDU, checking the transaction id.
    pub async fn call(&mut self, unit: u8, pdu: &[u8]) -> Vec<u8> {
        let tid = self.send(unit, pdu).await;
        let (rtid, runit, rpdu) = self.recv().await.expect("connection closed");
        assert_eq!((rtid, runit), (tid, unit));
        rpdu
    }
}

pub fn read_pdu(function: u8, address: u16, quantity: u16) -> Vec<u8> {
    let mut v = vec![function];
    v.extend_from_slice(&address.to_be_bytes());
    v.extend_from_slice(&quantity.to_be_bytes());
    v
}
