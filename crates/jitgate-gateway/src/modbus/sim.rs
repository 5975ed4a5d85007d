//! A simulated PLC: an in-memory Modbus/TCP server for tests and benchmarks (feature `sim`).
//!
//! Each unit id it serves has the four Modbus tables at full size (65,536 coils, discrete
//! inputs, input registers and holding registers). It answers FC 1-6, 15, 16, 22 and 23
//! like a device would — exceptions for bad quantities or unknown functions, 0x0B for unit
//! ids it does not serve — over any number of concurrent connections. It is built to be
//! fast so a benchmark measures the path to it, not the device: TCP_NODELAY, a fixed read
//! buffer, pipelined requests answered with one write, one short lock per request.
//!
//! Framing reuses [`super::frame::parse_adu`] and a malformed header closes the
//! connection, as a strict device would. That it is a real Modbus server is proved by the
//! integration tests, which drive it with pymodbus and mbpoll.

use super::exception::{exception_adu, Exception};
use super::frame::{encode_adu, parse_adu, Adu, MAX_ADU_LEN, MAX_PDU_LEN};
use super::request::{coil_values, decode_request, register_values, Request, RequestError};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

const TABLE_LEN: usize = 1 << 16;
/// Read buffer per connection: many pipelined requests fit, and after answering every
/// complete frame the remainder (a partial frame, under `MAX_ADU_LEN`) always leaves room.
const READ_BUF: usize = 16 * MAX_ADU_LEN;

struct Tables {
    coils: Box<[bool]>,
    discretes: Box<[bool]>,
    inputs: Box<[u16]>,
    holding: Box<[u16]>,
}

impl Tables {
    fn new() -> Self {
        Tables {
            coils: vec![false; TABLE_LEN].into_boxed_slice(),
            discretes: vec![false; TABLE_LEN].into_boxed_slice(),
            inputs: vec![0; TABLE_LEN].into_boxed_slice(),
            holding: vec![0; TABLE_LEN].into_boxed_slice(),
        }
    }
}

/// `quantity` items from `address` (the decoder has checked they fit below 65536).
fn range<T>(table: &[T], address: u16, quantity: u16) -> &[T] {
    let start = usize::from(address);
    table
        .get(start..start + usize::from(quantity))
        .unwrap_or_default()
}

fn range_mut<T>(table: &mut [T], address: u16, quantity: u16) -> &mut [T] {
    let start = usize::from(address);
    table
        .get_mut(start..start + usize::from(quantity))
        .unwrap_or_default()
}

struct Shared {
    /// Sorted by unit id.
    units: Vec<(u8, Mutex<Tables>)>,
    requests: AtomicU64,
}

impl Shared {
    fn tables(&self, unit: u8) -> Option<MutexGuard<'_, Tables>> {
        let i = self.units.binary_search_by_key(&unit, |(u, _)| *u).ok()?;
        let (_, tables) = self.units.get(i)?;
        // A panic while holding the lock cannot leave the tables inconsistent in a way
        // that matters to a simulator; keep serving.
        Some(tables.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A running simulated PLC. Dropping it stops it as [`SimPlc::shutdown`] does, without
/// waiting.
pub struct SimPlc {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// Listen on `addr` (port 0 picks a free port) and serve the unit ids in `units`.
pub async fn start(addr: SocketAddr, units: Vec<u8>) -> io::Result<SimPlc> {
    let mut units = units;
    units.sort_unstable();
    units.dedup();
    if units.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a simulated PLC needs at least one unit id to serve",
        ));
    }
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        units: units
            .into_iter()
            .map(|u| (u, Mutex::new(Tables::new())))
            .collect(),
        requests: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
    Ok(SimPlc {
        local_addr,
        shared,
        stop,
        task: Some(task),
    })
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, Arc::clone(&shared)));
                }
                // Out of file descriptors under a load test: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; READ_BUF];
    let mut filled = 0usize;
    let mut out = Vec::with_capacity(READ_BUF);
    loop {
        let n = stream
            .read(buf.get_mut(filled..).unwrap_or_default())
            .await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut start = 0usize;
        loop {
            let rest = buf.get(start..filled).unwrap_or_default();
            match parse_adu(rest) {
                Ok(Some((adu, used))) => {
                    answer(&shared, &adu, &mut out);
                    start += used;
                }
                Ok(None) => break,
                // A strict device closes on a broken header rather than guessing.
                Err(_) => return Ok(()),
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
    }
}

/// Append the response to one request ADU to `out`.
fn answer(shared: &Shared, adu: &Adu<'_>, out: &mut Vec<u8>) {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let function = adu.function().unwrap_or(0);
    let mut pdu = [0u8; MAX_PDU_LEN];
    let result = match shared.tables(adu.unit_id) {
        None => Err(Exception::GatewayTargetDeviceFailedToRespond),
        Some(mut tables) => match decode_request(adu.pdu) {
            Ok(req) => execute(&mut tables, &req, adu.pdu, &mut pdu),
            Err(RequestError::AddressOverflow { .. }) => Err(Exception::IllegalDataAddress),
            Err(RequestError::BadFunctionCode { .. }) => Err(Exception::IllegalFunction),
            Err(_) => Err(Exception::IllegalDataValue),
        },
    };
    match result {
        Ok(len) => {
            let body = pdu.get(..len).unwrap_or_default();
            if encode_adu(adu.transaction_id, adu.unit_id, body, out).is_err() {
                // Unreachable: responses are at most 253 bytes; answer as a device would.
                out.extend_from_slice(&exception_adu(
                    adu.transaction_id,
                    adu.unit_id,
                    function,
                    Exception::ServerDeviceFailure,
                ));
            }
        }
        Err(exception) => out.extend_from_slice(&exception_adu(
            adu.transaction_id,
            adu.unit_id,
            function & 0x7F,
            exception,
        )),
    }
}

/// Carry out `req`, writing the response PDU into `pdu`; returns its length.
fn execute(
    t: &mut Tables,
    req: &Request<'_>,
    request_pdu: &[u8],
    pdu: &mut [u8; MAX_PDU_LEN],
) -> Result<usize, Exception> {
    let function = req.function();
    pdu[0] = function;
    let echo = |pdu: &mut [u8; MAX_PDU_LEN]| {
        let len = request_pdu.len().min(MAX_PDU_LEN);
        for (slot, byte) in pdu.iter_mut().zip(request_pdu) {
            *slot = *byte;
        }
        len
    };
    let ack = |pdu: &mut [u8; MAX_PDU_LEN], address: u16, quantity: u16| {
        let [a0, a1] = address.to_be_bytes();
        let [q0, q1] = quantity.to_be_bytes();
        pdu[1..5].copy_from_slice(&[a0, a1, q0, q1]);
        5
    };
    match *req {
        Request::ReadCoils { address, quantity } => {
            Ok(pack_bits(range(&t.coils, address, quantity), pdu))
        }
        Request::ReadDiscreteInputs { address, quantity } => {
            Ok(pack_bits(range(&t.discretes, address, quantity), pdu))
        }
        Request::ReadHoldingRegisters { address, quantity } => {
            Ok(pack_registers(range(&t.holding, address, quantity), pdu))
        }
        Request::ReadInputRegisters { address, quantity } => {
            Ok(pack_registers(range(&t.inputs, address, quantity), pdu))
        }
        Request::WriteSingleCoil { address, value } => {
            range_mut(&mut t.coils, address, 1).fill(value);
            Ok(echo(pdu))
        }
        Request::WriteSingleRegister { address, value } => {
            range_mut(&mut t.holding, address, 1).fill(value);
            Ok(echo(pdu))
        }
        Request::WriteMultipleCoils {
            address,
            quantity,
            values,
        } => {
            for (slot, v) in range_mut(&mut t.coils, address, quantity)
                .iter_mut()
                .zip(coil_values(values, quantity))
            {
                *slot = v;
            }
            Ok(ack(pdu, address, quantity))
        }
        Request::WriteMultipleRegisters {
            address,
            quantity,
            values,
        } => {
            for (slot, v) in range_mut(&mut t.holding, address, quantity)
                .iter_mut()
                .zip(register_values(values))
            {
                *slot = v;
            }
            Ok(ack(pdu, address, quantity))
        }
        Request::MaskWriteRegister {
            address,
            and_mask,
            or_mask,
        } => {
            for slot in range_mut(&mut t.holding, address, 1) {
                *slot = (*slot & and_mask) | (or_mask & !and_mask);
            }
            Ok(echo(pdu))
        }
        Request::ReadWriteMultipleRegisters {
            read_address,
            read_quantity,
            write_address,
            write_quantity,
            values,
        } => {
            // The specification has the write happen before the read.
            for (slot, v) in range_mut(&mut t.holding, write_address, write_quantity)
                .iter_mut()
                .zip(register_values(values))
            {
                *slot = v;
            }
            Ok(pack_registers(
                range(&t.holding, read_address, read_quantity),
                pdu,
            ))
        }
        Request::Other { .. } => Err(Exception::IllegalFunction),
    }
}

/// Byte count then packed bits (first in the lowest bit); returns the PDU length.
fn pack_bits(bits: &[bool], pdu: &mut [u8; MAX_PDU_LEN]) -> usize {
    let bytes = bits.len().div_ceil(8);
    let Some(data) = pdu.get_mut(2..2 + bytes) else {
        return 0;
    };
    data.fill(0);
    for (chunk, byte) in bits.chunks(8).zip(data.iter_mut()) {
        for (i, &bit) in chunk.iter().enumerate() {
            *byte |= u8::from(bit) << i;
        }
    }
    // At most 250 (2000 bits).
    pdu[1] = bytes as u8;
    2 + bytes
}

/// Byte count then big-endian registers; returns the PDU length.
fn pack_registers(regs: &[u16], pdu: &mut [u8; MAX_PDU_LEN]) -> usize {
    let bytes = 2 * regs.len();
    let Some(data) = pdu.get_mut(2..2 + bytes) else {
        return 0;
    };
    for (pair, reg) in data.chunks_exact_mut(2).zip(regs) {
        pair.copy_from_slice(&reg.to_be_bytes());
    }
    // At most 250 (125 registers).
    pdu[1] = bytes as u8;
    2 + bytes
}

impl SimPlc {
    /// Where it listens (with the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Request ADUs answered so far, exceptions included: lets a test prove that a refused
    /// request never reached the device.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    fn with<R>(&self, unit: u8, f: impl FnOnce(&mut Tables) -> R) -> Option<R> {
        self.shared.tables(unit).map(|mut t| f(&mut t))
    }

    /// A holding register; 0 for a unit id the simulator does not serve.
    pub fn read_holding(&self, unit: u8, address: u16) -> u16 {
        self.with(unit, |t| range(&t.holding, address, 1).first().copied())
            .flatten()
            .unwrap_or(0)
    }

    /// Set a holding register (ignored for a unit id the simulator does not serve).
    pub fn set_holding(&self, unit: u8, address: u16, value: u16) {
        self.with(unit, |t| range_mut(&mut t.holding, address, 1).fill(value));
    }

    /// An input register; 0 for a unit id the simulator does not serve.
    pub fn read_input(&self, unit: u8, address: u16) -> u16 {
        self.with(unit, |t| range(&t.inputs, address, 1).first().copied())
            .flatten()
            .unwrap_or(0)
    }

    pub fn set_input(&self, unit: u8, address: u16, value: u16) {
        self.with(unit, |t| range_mut(&mut t.inputs, address, 1).fill(value));
    }

    /// A coil; false for a unit id the simulator does not serve.
    pub fn coil(&self, unit: u8, address: u16) -> bool {
        self.with(unit, |t| range(&t.coils, address, 1).first().copied())
            .flatten()
            .unwrap_or(false)
    }

    pub fn set_coil(&self, unit: u8, address: u16, value: bool) {
        self.with(unit, |t| range_mut(&mut t.coils, address, 1).fill(value));
    }

    /// A discrete input; false for a unit id the simulator does not serve.
    pub fn discrete(&self, unit: u8, address: u16) -> bool {
        self.with(unit, |t| range(&t.discretes, address, 1).first().copied())
            .flatten()
            .unwrap_or(false)
    }

    pub fn set_discrete(&self, unit: u8, address: u16, value: bool) {
        self.with(unit, |t| {
            range_mut(&mut t.discretes, address, 1).fill(value)
        });
    }

    /// Stop listening and close every connection; returns once they are closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimPlc {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &mut Tables, req: &[u8]) -> Result<Vec<u8>, Exception> {
        let mut pdu = [0u8; MAX_PDU_LEN];
        let decoded = decode_request(req).unwrap();
        let len = execute(t, &decoded, req, &mut pdu)?;
        Ok(pdu[..len].to_vec())
    }

    #[test]
    fn reads_and_writes_each_table() {
        let mut t = Tables::new();
        t.holding[65535] = 0xBEEF;
        assert_eq!(
            run(&mut t, &[3, 0xFF, 0xFF, 0, 1]).unwrap(),
            [3, 2, 0xBE, 0xEF]
        );
        assert_eq!(
            run(&mut t, &[6, 0, 1, 0x12, 0x34]).unwrap(),
            [6, 0, 1, 0x12, 0x34]
        );
        assert_eq!(t.holding[1], 0x1234);
        assert_eq!(
            run(&mut t, &[16, 0, 2, 0, 2, 4, 0, 7, 0, 8]).unwrap(),
            [16, 0, 2, 0, 2]
        );
        assert_eq!(&t.holding[1..4], &[0x1234, 7, 8]);
        assert_eq!(
            run(&mut t, &[5, 0, 3, 0xFF, 0]).unwrap(),
            [5, 0, 3, 0xFF, 0]
        );
        assert!(t.coils[3]);
        assert_eq!(
            run(&mut t, &[15, 0, 8, 0, 9, 2, 0xFF, 0x01]).unwrap(),
            [15, 0, 8, 0, 9]
        );
        assert_eq!(
            run(&mut t, &[1, 0, 0, 0, 17]).unwrap(),
            [1, 3, 0x08, 0xFF, 0x01]
        );
        t.discretes[0] = true;
        t.inputs[5] = 42;
        assert_eq!(run(&mut t, &[2, 0, 0, 0, 1]).unwrap(), [2, 1, 1]);
        assert_eq!(run(&mut t, &[4, 0, 5, 0, 1]).unwrap(), [4, 2, 0, 42]);
        // Mask write: (0x12 AND 0xF2) OR (0x25 AND NOT 0xF2) = 0x17 (spec example).
        t.holding[4] = 0x12;
        run(&mut t, &[22, 0, 4, 0, 0xF2, 0, 0x25]).unwrap();
        assert_eq!(t.holding[4], 0x17);
        // FC23 writes first, then reads.
        assert_eq!(
            run(&mut t, &[23, 0, 9, 0, 2, 0, 10, 0, 1, 2, 0xAA, 0xBB]).unwrap(),
            [23, 4, 0, 0, 0xAA, 0xBB]
        );
        assert_eq!(
            run(&mut t, &[8, 0, 0, 0, 0]),
            Err(Exception::IllegalFunction)
        );
    }

    #[test]
    fn pack_full_quantities() {
        let mut t = Tables::new();
        let len = run(&mut t, &[1, 0, 0, 0x07, 0xD0]).unwrap().len();
        assert_eq!(len, 2 + 250);
        let len = run(&mut t, &[3, 0, 0, 0, 125]).unwrap().len();
        assert_eq!(len, 2 + 250);
    }
}
