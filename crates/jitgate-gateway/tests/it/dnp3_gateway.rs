//! DNP3 through the real gateway, end to end: dnp3py's master on `jitgate connect`'s local
//! port, the gateway runtime, and as the device the Rust simulated outstation or dnp3py's
//! own outstation. What the master gets back, what the device executed and received, and
//! what the evidence log says.

use crate::dnp3_rig::{
    ended, have_dnp3py, master_async, master_with_progress, operations, rule, Dnp3Rig, PyOutstation,
};
use jitgate_core::scope::Dnp3Op::{Operate, Read, Unsolicited};
use jitgate_core::scope::Dnp3Target::{AnalogInput, BinaryOutput, Class};
use jitgate_gateway::dnp3::sim;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const HOUR: chrono::Duration = chrono::Duration::hours(1);

fn iin(r: &Value, i: usize) -> (u64, u64) {
    let resp = &r["responses"][i];
    assert!(resp.is_object(), "no response {i}: {r}");
    (
        resp["iin1"].as_u64().unwrap(),
        resp["iin2"].as_u64().unwrap(),
    )
}

/// The application function codes of `fragments` (requests as the device received them).
fn functions(fragments: &[Vec<u8>]) -> Vec<u8> {
    fragments.iter().map(|f| f[1]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnp3py_master_through_the_gateway_to_the_simulated_outstation() {
    if !have_dnp3py() {
        return;
    }
    let rtu = sim::start("127.0.0.1:0".parse().unwrap(), 10, 1, 16)
        .await
        .unwrap();
    rtu.preset_values();
    let rig = Dnp3Rig::start(rtu.local_addr()).await;
    let scope = vec![
        rule(Read, Class, 0, 1),
        rule(Read, AnalogInput, 0, 7),
        rule(Operate, BinaryOutput, 3, 5),
        rule(Unsolicited, Class, 1, 1),
    ];
    let port = rig.local_port(rig.grant("grant-d1", scope, HOUR)).await;
    let steps = json!([
        ["class0"],
        ["read", 30, 1, 0, 3],
        ["read", 30, 1, 0, 15],
        ["direct_operate", 7, "latch_on"],
        ["select_operate", 4, "latch_on"],
        ["direct_operate_analog", 1, 42],
        ["cold_restart"],
        ["enable_unsolicited", [1]],
        ["listen", 10.0],
        ["class0"]
    ]);
    let run = tokio::spawn(master_async(port, steps));
    // Once the master has enabled class 1 reporting, a binary input changes: the event
    // comes to the master unsolicited, through the gateway.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !rtu.unsolicited_enabled(1) {
        assert!(
            Instant::now() < deadline,
            "unsolicited reporting never enabled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rtu.set_binary_input(2, true);
    let r = run.await.unwrap();
    assert_eq!(r.len(), 10, "{r:#?}");

    // An allowed class 0 poll returns the outstation's real values.
    assert_eq!(iin(&r[0], 0), (0x80, 0), "IIN1.7: the device restarted");
    let ai = &r[0]["values"]["analog_input"];
    assert_eq!(
        (ai["0"].as_f64(), ai["15"].as_f64()),
        (Some(100.0), Some(115.0))
    );
    assert_eq!(r[0]["values"]["counter"]["3"], 1003);
    assert_eq!(r[1]["values"]["analog_input"]["3"], 103.0);
    // Out of scope: the master gets the refusal's IIN2 bit with the outstation's IIN1.
    assert_eq!(iin(&r[2], 0), (0x80, 0x04), "analog inputs 0-15 of 0-7");
    assert_eq!(r[2]["values"], json!({}));
    assert_eq!(iin(&r[3], 0), (0x80, 0x04), "operate binary output 7");
    assert!(!rtu.binary_output(7), "the refused operate changed nothing");
    // Select then operate of a granted point works.
    assert_eq!((iin(&r[4], 0), iin(&r[4], 1)), ((0x80, 0), (0x80, 0)));
    assert!(rtu.binary_output(4));
    assert_eq!(iin(&r[5], 0), (0x80, 0x02), "no analog output is granted");
    assert_eq!(rtu.analog_output(1), 0);
    assert_eq!(iin(&r[6], 0), (0x80, 0x01), "no restart is granted");
    assert_eq!(iin(&r[7], 0), (0x80, 0));
    // The unsolicited event arrived, the master's confirm reached the outstation.
    assert_eq!(r[8]["responses"][0]["unsolicited"], true, "{}", r[8]);
    assert_eq!(r[8]["values"]["binary_input"]["2"], true);
    assert_eq!(r[9]["values"]["binary_input"]["2"], true);
    assert_eq!(
        rtu.events(),
        0,
        "the event was confirmed through the gateway"
    );

    // The outstation saw only what was allowed: reads, the select and operate, the enable,
    // confirms; never the direct operate, the analog operate or the restart.
    let received = rtu.received();
    let f = functions(&received);
    assert!(!f.contains(&0x05) && !f.contains(&0x0D), "{received:02x?}");
    assert_eq!(f.iter().filter(|c| **c == 0x01).count(), 3, "{f:02x?}");
    assert!(f.contains(&0x03) && f.contains(&0x04) && f.contains(&0x14));

    // Every request is in the evidence, allowed and refused, with its objects.
    let events = rig
        .events_until(|ev| {
            operations(ev, "grant-d1")
                .iter()
                .any(|o| o["direction"] == "outstation")
        })
        .await;
    let ops = operations(&events, "grant-d1");
    let refused: Vec<&&Value> = ops.iter().filter(|o| o["allowed"] == false).collect();
    assert_eq!(refused.len(), 4, "{ops:#?}");
    let direct = refused
        .iter()
        .find(|o| o["function_name"] == "DIRECT_OPERATE" && o["objects"][0]["group"] == 12)
        .unwrap_or_else(|| panic!("{refused:#?}"));
    assert_eq!(direct["refusal_iin2"], 4);
    assert_eq!(direct["objects"][0]["indexes"], json!([7]));
    assert_eq!(direct["objects"][0]["commands"][0]["control"], "LATCH_ON");
    assert!(direct["reason"]
        .as_str()
        .unwrap()
        .contains("operate binary-output 3-5"));
    let uns = ops.iter().find(|o| o["direction"] == "outstation").unwrap();
    assert_eq!(uns["function_name"], "UNSOLICITED_RESPONSE");
    assert_eq!(uns["objects"][0]["group"], 2);
    assert!(ops
        .iter()
        .any(|o| o["link"] == "RESET_LINK_STATES" && o["allowed"] == true));
    rig.gw.stop().await;
    rtu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnp3py_outstation_behind_the_gateway() {
    if !have_dnp3py() {
        return;
    }
    let outstation = PyOutstation::start();
    let device = format!("127.0.0.1:{}", outstation.port).parse().unwrap();
    let rig = Dnp3Rig::start(device).await;
    let scope = vec![rule(Read, Class, 0, 0), rule(Operate, BinaryOutput, 3, 3)];
    let port = rig.local_port(rig.grant("grant-py", scope, HOUR)).await;
    let steps = json!([
        ["class0"],
        ["direct_operate", 7, "latch_on"],
        ["select_operate", 3, "latch_on"],
        ["direct_operate", 4, "latch_on"],
        ["class0"]
    ]);
    let r = master_async(port, steps).await;
    assert_eq!(r.len(), 5, "{r:#?}");
    assert_eq!(iin(&r[0], 0).1, 0);
    assert_eq!(r[0]["values"]["analog_input"]["4"], 204.0);
    assert_eq!(r[0]["values"]["counter"]["9"], 2009);
    assert_eq!(iin(&r[1], 0).1, 0x04);
    assert_eq!((iin(&r[2], 0).1, iin(&r[2], 1).1), (0, 0));
    assert_eq!(iin(&r[3], 0).1, 0x04);
    let outputs = &r[4]["values"]["binary_output"];
    assert_eq!(
        (&outputs["3"], &outputs["4"], &outputs["7"]),
        (&json!(true), &json!(false), &json!(false))
    );
    // What reached dnp3py's outstation: the select and operate of 3, never 7 or 4.
    let log = outstation.log();
    let operated: Vec<&Value> = log.iter().filter(|l| l.get("operate").is_some()).collect();
    assert_eq!(operated.len(), 1, "{log:#?}");
    assert_eq!(operated[0]["index"], 3);
    let requests: Vec<Vec<u8>> = log
        .iter()
        .filter_map(|l| l["request"].as_str())
        .map(|h| {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        functions(&requests),
        [0x01, 0x03, 0x04, 0x01],
        "{requests:02x?}"
    );
    rig.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_revocation_cut_the_master() {
    if !have_dnp3py() {
        return;
    }
    let rtu = sim::start("127.0.0.1:0".parse().unwrap(), 10, 1, 4)
        .await
        .unwrap();
    let rig = Dnp3Rig::start(rtu.local_addr()).await;
    let listen = json!([["class0"], ["listen", 30.0]]);
    // A credential that expires in 3 s: the master listening for events is cut then.
    let short = rig.grant(
        "grant-short",
        vec![rule(Read, Class, 0, 0)],
        chrono::Duration::seconds(3),
    );
    let port = rig.local_port(short).await;
    let started = Instant::now();
    let r = master_async(port, listen.clone()).await;
    assert_eq!(iin(&r[0], 0).1, 0);
    assert!(r.get(1).is_some_and(|s| s["error"].is_string()), "{r:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "cut at expiry, not at the master's timeout"
    );
    let events = rig
        .events_until(|ev| !ended(ev, "grant-short").is_empty())
        .await;
    assert_eq!(ended(&events, "grant-short"), ["expired"]);

    // Revoked while the master listens: cut at once.
    let long = rig.grant("grant-long", vec![rule(Read, Class, 0, 0)], HOUR);
    let port = rig.local_port(long).await;
    let progress = tempfile::NamedTempFile::new().unwrap();
    let path = progress.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || master_with_progress(port, listen, Some(&path)));
    // Revoked once the master has its poll's answer and listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(progress.path()).unwrap_or_default() != "class0\n" {
        assert!(Instant::now() < deadline, "the master never polled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let revoked_at = Instant::now();
    rig.revoke("grant-long");
    let r = run.await.unwrap();
    assert!(r.get(1).is_some_and(|s| s["error"].is_string()), "{r:#?}");
    assert!(revoked_at.elapsed() < Duration::from_secs(20));
    let events = rig
        .events_until(|ev| !ended(ev, "grant-long").is_empty())
        .await;
    assert_eq!(ended(&events, "grant-long"), ["grant_revoked"]);
    rig.gw.stop().await;
    rtu.shutdown().await;
}

/// 200 points of each type: a class 0 response of several fragments, each but the last
/// asking for a confirm that goes through the gateway before the next comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_fragment_response_is_relayed_with_its_confirms() {
    if !have_dnp3py() {
        return;
    }
    let rtu = sim::start("127.0.0.1:0".parse().unwrap(), 10, 1, 200)
        .await
        .unwrap();
    rtu.preset_values();
    let rig = Dnp3Rig::start(rtu.local_addr()).await;
    let port = rig
        .local_port(rig.grant("grant-big", vec![rule(Read, Class, 0, 0)], HOUR))
        .await;
    let r = master_async(port, json!([["class0"], ["class0"]])).await;
    for step in &r {
        let responses = step["responses"].as_array().unwrap();
        assert!(responses.len() >= 2, "several fragments: {step}");
        let ai = step["values"]["analog_input"].as_object().unwrap();
        assert_eq!(ai.len(), 200);
        assert_eq!(ai["199"], 299.0);
    }
    // The outstation got the reads and a confirm per non-final fragment.
    let f = functions(&rtu.received());
    let confirms = f.iter().filter(|c| **c == 0x00).count();
    assert_eq!(f.iter().filter(|c| **c == 0x01).count(), 2, "{f:02x?}");
    assert!(confirms >= 2, "{f:02x?}");
    rig.gw.stop().await;
    rtu.shutdown().await;
}
