//! Run the simulated DNP3 outstation as a process, for the quickstart and end-to-end tests.
//!
//! ```text
//! cargo run -p jitgate-gateway --features sim --example sim_rtu -- \
//!     [--listen 127.0.0.1:20000] [--outstation 10] [--master 1] [--points 16]
//! ```
//!
//! Point `n` starts with recognisable values so a master can tell real device values from
//! zeros: analog input `n` = 100 + n, counter `n` = 1000 + n, binary input `n` = n is odd.
//! It prints `listening on <addr>` once ready (useful with port 0) and runs until Ctrl-C.

use jitgate_gateway::dnp3::sim;
use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = "127.0.0.1:20000".parse()?;
    let (mut outstation, mut master, mut points) = (10u16, 1u16, 16u16);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => listen = value()?.parse()?,
            "--outstation" => outstation = value()?.parse()?,
            "--master" => master = value()?.parse()?,
            "--points" => points = value()?.parse()?,
            "-h" | "--help" => {
                println!(
                    "usage: sim_rtu [--listen ADDR] [--outstation 10] [--master 1] [--points 16]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; see --help").into()),
        }
    }
    let rtu = sim::start(listen, outstation, master, points).await?;
    rtu.preset_values();
    println!("listening on {}", rtu.local_addr());
    tokio::signal::ctrl_c().await?;
    rtu.shutdown().await;
    Ok(())
}
