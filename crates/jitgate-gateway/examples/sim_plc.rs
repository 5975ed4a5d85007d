//! Run the simulated PLC as a process, for end-to-end tests and benchmarks.
//!
//! ```text
//! cargo run -p jitgate-gateway --example sim_plc -- [--listen 127.0.0.1:5020] [--units 1,2]
//! ```
//!
//! Holding and input register `n` start at value `n` (wrapping at 65535) so a reader can tell
//! real device values from zeros. It prints `listening on <addr>` once ready (useful with
//! port 0) and runs until Ctrl-C.

use jitgate_gateway::modbus::sim;
use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = "127.0.0.1:5020".parse()?;
    let mut units: Vec<u8> = vec![1];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                listen = args.next().ok_or("--listen needs an address")?.parse()?;
            }
            "--units" => {
                let list = args.next().ok_or("--units needs a list such as 1,2")?;
                units = list.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => {
                println!("usage: sim_plc [--listen ADDR] [--units 1,2]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; see --help").into()),
        }
    }
    let plc = sim::start(listen, units.clone()).await?;
    for &unit in &units {
        for address in 0..=u16::MAX {
            plc.set_holding(unit, address, address);
            plc.set_input(unit, address, address);
        }
    }
    println!("listening on {}", plc.local_addr());
    tokio::signal::ctrl_c().await?;
    plc.shutdown().await;
    Ok(())
}
