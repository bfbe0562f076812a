//! A long-running receiver: what each delivery leaves behind is given back, so memory stays flat
//! however many distinct events arrive. Its own test binary, so no other test moves the
//! process's memory meanwhile.

#![allow(clippy::unwrap_used)]

use nextgen_events::{Context, Endpoint, WebhookConfig, sign};

/// The process's resident memory in bytes (Linux), `None` where it cannot be read.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn body(id: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","object":"event","type":"customer.created","created":1,"livemode":false,"data":{{"object":{{"id":"cus_1","object":"customer","balance":0,"created":1}}}}}}"#
    )
    .into_bytes()
}

#[tokio::test(flavor = "current_thread")]
async fn memory_stays_flat_over_many_distinct_events() {
    // No handler is linked into this binary and redelivery detection keeps nothing for an
    // event without handlers: what grows is only what a delivery failed to give back (such as
    // the per-event-id turn that deliveries of one id take in this process).
    let endpoint =
        Endpoint::new(WebhookConfig::new("whsec_long_running").with_clock(|| 1_000)).unwrap();
    let context = Context::new();
    let mut next = 0u32;
    let mut deliver = async |count: u32| {
        for _ in 0..count {
            let id = format!("evt_long_running_{next:08}");
            next += 1;
            let body = body(&id);
            let signature = sign(&body, "whsec_long_running", 1_000);
            let taken = endpoint.receive(&body, Some(&signature), &context).await;
            assert!(taken.unwrap().report().unwrap().outcomes.is_empty());
        }
    };
    deliver(5_000).await;
    let Some(before) = resident_bytes() else {
        println!("SKIPPED: /proc/self/statm cannot be read here");
        return;
    };
    deliver(50_000).await;
    let after = resident_bytes().unwrap();
    let grown = after.saturating_sub(before);
    println!("resident memory: {before} -> {after} bytes");
    // 50,000 leaked entries of a few dozen bytes each would be several MiB.
    assert!(
        grown < 1024 * 1024,
        "memory grew by {grown} bytes over 50,000 deliveries ({before} -> {after})"
    );
}
