//! The relay loop for framed request/response protocols, generic over
//! `FrameProtocol`: one request at a time, each answered
//! (by the device or by the protocol's refusal) before the next is read. Only complete
//! frames ever reach the device; a frame that breaks the protocol closes the session, never
//! a resynchronisation by dropping bytes.
//!
//! The loop does the I/O and the evidence; the protocol module decides. It returns why the
//! session ended; the caller races it against [`SessionHandle::cut`] for revocations,
//! expiry and the idle timeout.

use crate::live::{SessionHandle, SessionStats};
use crate::protocol::{Answer, Decision, FrameProtocol};
use crate::runtime::now_millis;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Relay `client` ⇄ `device` under `allow` until one side ends or breaks the protocol.
/// Returns the reason, as `session.ended` records it.
pub async fn relay<P, C, D>(
    handle: &SessionHandle,
    client: &mut C,
    device: &mut D,
    allow: &P::Allow,
    state: &mut P::State,
    device_timeout: Duration,
    stats: &mut SessionStats,
) -> String
where
    P: FrameProtocol,
    C: AsyncRead + AsyncWrite + Unpin,
    D: AsyncRead + AsyncWrite + Unpin,
{
    let mut inbuf: Vec<u8> = Vec::with_capacity(P::FRAME_BUF);
    let mut devbuf: Vec<u8> = Vec::with_capacity(P::FRAME_BUF);
    let mut chunk = vec![0u8; P::FRAME_BUF];
    // The device's own read buffer, used only by protocols whose devices speak unasked.
    let mut devchunk = if P::UNSOLICITED {
        vec![0u8; P::FRAME_BUF]
    } else {
        Vec::new()
    };
    loop {
        // Frames the device sent after the last answer, in the same read, are relayed now
        // rather than when it next speaks.
        if P::UNSOLICITED && !devbuf.is_empty() {
            if let Err(end) =
                relay_unsolicited::<P, C>(handle, client, state, &mut devbuf, stats).await
            {
                return end;
            }
        }
        // Take one complete request from what the client sent.
        let consumed = loop {
            match P::request_len(&inbuf) {
                Ok(Some(used)) => break used,
                Ok(None) => {}
                Err(fault) => {
                    // The session ends either way; a failure to write is logged.
                    let _ = handle.record(
                        "operation",
                        now_millis(),
                        json!({"allowed": false, "malformed": fault.code, "reason": fault.message}),
                    );
                    return format!("malformed_frame: {}", fault.message);
                }
            }
            let read = if P::UNSOLICITED {
                // Idle, the device may speak first: relay what it says, frame by frame.
                tokio::select! {
                    r = client.read(&mut chunk) => r,
                    r = device.read(&mut devchunk) => {
                        match r {
                            Ok(0) => return "device_closed".into(),
                            Ok(n) => devbuf.extend_from_slice(devchunk.get(..n).unwrap_or_default()),
                            Err(e) => return format!("device_error: {e}"),
                        }
                        if let Err(end) = relay_unsolicited::<P, C>(handle, client, state, &mut devbuf, stats).await {
                            return end;
                        }
                        continue;
                    }
                }
            } else {
                client.read(&mut chunk).await
            };
            match read {
                // The client said goodbye (TLS close_notify): a normal end.
                Ok(0) => return "client_closed".into(),
                Ok(n) => {
                    stats.bytes_in += n as u64;
                    handle.touch();
                    inbuf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                }
                // The connection ended without close_notify (client killed, network cut, an
                // old client): not an error of the session, but not a clean close either.
                // Only complete frames ever reach the device, so nothing was truncated.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return "client_disconnected".into()
                }
                Err(e) => return format!("client_error: {e}"),
            }
        };
        let at = now_millis();
        let started = std::time::Instant::now();
        let Some(frame) = inbuf.get(..consumed) else {
            return "internal: frame vanished".into();
        };
        let decision = P::decide(allow, state, frame);
        stats.operations += 1;
        let mut io = Io {
            client,
            device,
            devbuf: &mut devbuf,
            chunk: &mut chunk,
        };
        match decision {
            Decision::Allow { pending, operation } => {
                let mut ask = Ask::<P> {
                    pending: &pending,
                    operation: &operation,
                    at,
                    answer: P::expects_answer(&pending),
                    timed: Some(started),
                    recorded: false,
                };
                let done = io
                    .exchange(frame, &mut ask, handle, state, device_timeout, stats)
                    .await;
                inbuf.drain(..consumed);
                // (No answer due: recorded once the device has the request.)
                if let Err(end) = done.and_then(|()| ask.record(handle, None)) {
                    return end;
                }
            }
            Decision::Substitute {
                device: substitute,
                pending,
                reply,
                operation,
            } => {
                inbuf.drain(..consumed);
                stats.denied += 1;
                let mut ask = Ask::<P> {
                    pending: &pending,
                    operation: &operation,
                    at,
                    answer: true,
                    timed: None,
                    recorded: false,
                };
                if let Err(end) = io
                    .exchange(&substitute, &mut ask, handle, state, device_timeout, stats)
                    .await
                    .and_then(|()| ask.record(handle, None))
                {
                    return end;
                }
                if let Err(e) = client.write_all(&reply).await {
                    return format!("client_error: {e}");
                }
                stats.bytes_out += reply.len() as u64;
            }
            Decision::Refuse { reply, operation } => {
                inbuf.drain(..consumed);
                stats.denied += 1;
                // Recorded before the client hears of it.
                if let Err(e) = handle.operation(at, &operation, None, None) {
                    return e.to_string();
                }
                if let Err(e) = client.write_all(&reply).await {
                    return format!("client_error: {e}");
                }
                stats.bytes_out += reply.len() as u64;
            }
            Decision::Malformed { fault, operation } => {
                if let Some(operation) = operation {
                    // The session ends either way; a failure to write is logged.
                    let _ = handle.operation(at, &operation, None, None);
                }
                return format!("malformed_request: {}", fault.message);
            }
        }
    }
}

/// What was sent to the device for one request: what answer is due, and the operation,
/// recorded before the first frame of the answer reaches the client (or with the fault
/// that ended it).
struct Ask<'a, P: FrameProtocol> {
    pending: &'a P::Pending,
    operation: &'a P::Operation,
    at: jitgate_core::Timestamp,
    /// Whether the device answers at all (not, e.g., to a DNP3 application confirm).
    answer: bool,
    /// When the request went out, for the device's latency (to its first answer frame).
    timed: Option<std::time::Instant>,
    /// Whether the operation is in the event file already.
    recorded: bool,
}

impl<P: FrameProtocol> Ask<'_, P> {
    /// Record the operation (once; with `failure` when the device failed it). After it was
    /// recorded, a device fault is recorded as an event of its own. `Err`: the session's
    /// end reason (the event file cannot be written: nothing more is relayed).
    fn record(&mut self, handle: &SessionHandle, failure: Option<&str>) -> Result<(), String> {
        if !self.recorded {
            let latency = self
                .timed
                .filter(|_| failure.is_none())
                .map(|t| t.elapsed());
            handle
                .operation(self.at, self.operation, failure, latency)
                .map_err(|e| e.to_string())?;
            self.recorded = true;
        } else if let Some(code) = failure {
            handle
                .record(
                    "operation",
                    now_millis(),
                    json!({"allowed": false, "malformed": code, "reason": "the device failed an answer already being relayed", "direction": "device"}),
                )
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The streams and buffers the answer to one request is read and relayed with.
struct Io<'a, C, D> {
    client: &'a mut C,
    device: &'a mut D,
    devbuf: &'a mut Vec<u8>,
    chunk: &'a mut Vec<u8>,
}

impl<C, D> Io<'_, C, D>
where
    C: AsyncWrite + Unpin,
    D: AsyncRead + AsyncWrite + Unpin,
{
    /// Send `bytes` to the device and, when `ask.answer`, read its answer and relay it.
    async fn exchange<P: FrameProtocol>(
        &mut self,
        bytes: &[u8],
        ask: &mut Ask<'_, P>,
        handle: &SessionHandle,
        state: &mut P::State,
        device_timeout: Duration,
        stats: &mut SessionStats,
    ) -> Result<(), String> {
        if let Err(e) = self.device.write_all(bytes).await {
            return Err(format!("device_error: {e}"));
        }
        if !ask.answer {
            return Ok(());
        }
        self.answer(ask, handle, state, device_timeout, stats).await
    }

    /// Read the device's answer to `ask.pending`, frame by frame, check each fits the request
    /// and relay it; a device that answers garbage, too late or not at all ends the session
    /// (`Err` with the reason, after recording `ask.operation` with the fault).
    ///
    /// Frames checked from one read of the device go to the client in one write (one TLS
    /// record, one wake-up of the client's side) — written before the next read of the
    /// device, when the answer is complete, and before the session ends on a bad frame.
    async fn answer<P: FrameProtocol>(
        &mut self,
        ask: &mut Ask<'_, P>,
        handle: &SessionHandle,
        state: &mut P::State,
        device_timeout: Duration,
        stats: &mut SessionStats,
    ) -> Result<(), String> {
        let pending = ask.pending;
        // Bytes at the start of `devbuf` that are checked and recorded, not yet relayed.
        let mut checked = 0;
        loop {
            let response_len = loop {
                match P::response_len(self.devbuf.get(checked..).unwrap_or_default()) {
                    Ok(Some(used)) => break used,
                    Ok(None) => {}
                    Err(fault) => {
                        self.relay_checked(&mut checked, stats).await?;
                        let _ = ask.record(handle, Some(fault.code));
                        return Err(format!("bad_device_response: {}", fault.message));
                    }
                }
                self.relay_checked(&mut checked, stats).await?;
                match tokio::time::timeout(device_timeout, self.device.read(self.chunk)).await {
                    Ok(Ok(0)) => return Err("device_closed".into()),
                    Ok(Ok(n)) => self
                        .devbuf
                        .extend_from_slice(self.chunk.get(..n).unwrap_or_default()),
                    Ok(Err(e)) => return Err(format!("device_error: {e}")),
                    Err(_) => {
                        let _ = ask.record(handle, Some("device_timeout"));
                        return Err("device_timeout".into());
                    }
                }
            };
            let Some(response) = self.devbuf.get(checked..checked + response_len) else {
                return Err("internal: frame vanished".into());
            };
            let answer = P::answer(state, pending, response);
            if let Answer::Invalid(fault) = answer {
                self.relay_checked(&mut checked, stats).await?;
                let _ = ask.record(handle, Some(fault.code));
                return Err(format!("bad_device_response: {}", fault.message));
            }
            // Evidence first, then the answer (a kill in between loses no answered
            // operation; a full disk relays nothing unrecorded).
            ask.record(handle, None)?;
            if let Some(record) = P::device_record(state) {
                handle
                    .operation(now_millis(), &record, None, None)
                    .map_err(|e| e.to_string())?;
            }
            checked += response_len;
            if answer == Answer::Complete {
                return self.relay_checked(&mut checked, stats).await;
            }
        }
    }

    /// Write the first `checked` bytes of `devbuf` (frames checked and recorded) to the
    /// client in one write, and drop them from the buffer.
    async fn relay_checked(
        &mut self,
        checked: &mut usize,
        stats: &mut SessionStats,
    ) -> Result<(), String> {
        relay_front(self.client, self.devbuf, std::mem::take(checked), stats).await
    }
}

/// Write the first `n` bytes of `devbuf` (device frames checked and recorded) to the client
/// in one write, and drop them from the buffer.
async fn relay_front<C: AsyncWrite + Unpin>(
    client: &mut C,
    devbuf: &mut Vec<u8>,
    n: usize,
    stats: &mut SessionStats,
) -> Result<(), String> {
    if n == 0 {
        return Ok(());
    }
    if let Err(e) = client.write_all(devbuf.get(..n).unwrap_or_default()).await {
        return Err(format!("client_error: {e}"));
    }
    stats.bytes_out += n as u64;
    devbuf.drain(..n);
    Ok(())
}

/// Relay every complete unsolicited frame in `devbuf` to the client (or end the session),
/// in one write for all the frames that came in one read.
async fn relay_unsolicited<P, C>(
    handle: &SessionHandle,
    client: &mut C,
    state: &mut P::State,
    devbuf: &mut Vec<u8>,
    stats: &mut SessionStats,
) -> Result<(), String>
where
    P: FrameProtocol,
    C: AsyncWrite + Unpin,
{
    let mut checked = 0;
    let end = loop {
        let rest = devbuf.get(checked..).unwrap_or_default();
        let len = match P::response_len(rest) {
            Ok(Some(len)) => len,
            Ok(None) => break None,
            Err(fault) => break Some(format!("bad_device_response: {}", fault.message)),
        };
        let Some(frame) = rest.get(..len) else {
            break Some("internal: frame vanished".into());
        };
        if let Answer::Invalid(fault) = P::unsolicited(state, frame) {
            let _ = handle.record(
                "operation",
                now_millis(),
                json!({"allowed": false, "malformed": fault.code, "reason": fault.message, "direction": "device"}),
            );
            break Some(format!("bad_device_response: {}", fault.message));
        }
        if let Some(record) = P::device_record(state) {
            if let Err(e) = handle.operation(now_millis(), &record, None, None) {
                break Some(e.to_string());
            }
        }
        checked += len;
    };
    // What was checked (and recorded) is relayed, even when a later frame ends the session.
    relay_front(client, devbuf, checked, stats).await?;
    end.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests;
