//! A recording outstation: a TCP tap in front of the simulated outstation that keeps every
//! byte the gateway sent it, per connection, exactly as written. What reached the device is
//! then judged by tshark from these bytes, not from the outstation's own parse.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Recorded {
    /// Per connection, in order of acceptance: the chunks read from the gateway.
    streams: Vec<Vec<Vec<u8>>>,
    open: usize,
}

pub struct Tap {
    pub addr: SocketAddr,
    recorded: Arc<Mutex<Recorded>>,
}

impl Tap {
    /// Listen on a free loopback port, relaying each connection to `device`.
    pub async fn start(device: SocketAddr) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorded: Arc<Mutex<Recorded>> = Arc::default();
        let rec = Arc::clone(&recorded);
        tokio::spawn(async move {
            while let Ok((gateway, _)) = listener.accept().await {
                let index = {
                    let mut r = rec.lock().unwrap();
                    r.streams.push(Vec::new());
                    r.open += 1;
                    r.streams.len() - 1
                };
                tokio::spawn(relay(gateway, device, index, Arc::clone(&rec)));
            }
        });
        Tap { addr, recorded }
    }

    /// Every connection's bytes, once every connection has closed (the gateway closes its
    /// device connection when a session ends). Panics if one stays open for 30 s.
    pub async fn streams_when_closed(&self) -> Vec<Vec<Vec<u8>>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let r = self.recorded.lock().unwrap();
                if r.open == 0 {
                    return r.streams.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "a device connection stayed open after its session ended"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn relay(gateway: TcpStream, device: SocketAddr, index: usize, rec: Arc<Mutex<Recorded>>) {
    let done = |rec: &Arc<Mutex<Recorded>>| rec.lock().unwrap().open -= 1;
    let Ok(device) = TcpStream::connect(device).await else {
        done(&rec);
        return;
    };
    let (mut from_gw, mut to_gw) = gateway.into_split();
    let (mut from_dev, mut to_dev) = device.into_split();
    let back = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = from_dev.read(&mut buf).await {
            if n == 0 || to_gw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_gw.shutdown().await;
    });
    let mut buf = vec![0u8; 4096];
    while let Ok(n) = from_gw.read(&mut buf).await {
        if n == 0 {
            break;
        }
        // Recorded before it is passed on: the device never has a byte the record lacks.
        rec.lock().unwrap().streams[index].push(buf[..n].to_vec());
        if to_dev.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to_dev.shutdown().await;
    back.abort();
    done(&rec);
}
