//! The floor of the SQLite inbox route: the same rows written by a plain rusqlite group-commit
//! writer (WAL, `synchronous=FULL`), fed by concurrent producers that each wait for their
//! row's commit before sending the next, as HTTP senders wait for their 200. No HTTP, no
//! verification, no parsing: only what durability costs on this disk.
//!
//! `cargo bench -p nextgen-events --features sqlite --bench inbox_floor -- [SECONDS=10] [PRODUCERS=64] [full|normal]`
//!
//! Prints `FLOOR rows_per_second <n>`, which `scripts/bench-inbox.sh` reads.

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

struct Row {
    id: String,
    body: Vec<u8>,
    done: mpsc::SyncSender<()>,
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let producers: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let synchronous = match args.get(2).map(String::as_str) {
        Some("normal") => "NORMAL",
        _ => "FULL",
    };
    let path = std::env::temp_dir().join(format!("nextgen-floor-{}.sqlite3", std::process::id()));
    let connection = Connection::open(&path).unwrap();
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};
             CREATE TABLE inbox (event_id TEXT PRIMARY KEY NOT NULL, event_type TEXT NOT NULL,
                 body BLOB NOT NULL, signed_at INTEGER NOT NULL, received_at_ms INTEGER NOT NULL,
                 state TEXT NOT NULL, due_at_ms INTEGER NOT NULL);
             CREATE INDEX inbox_due ON inbox (due_at_ms) WHERE state = 'pending';"
        ))
        .unwrap();
    // The example server's 1 KiB charge.succeeded body, as the HTTP route receives it.
    let body = format!(
        r#"{{"id":"evt_floor","object":"event","type":"charge.succeeded","data":{{"object":{{"id":"ch_1","description":"{}"}}}}}}"#,
        "x".repeat(880)
    )
    .into_bytes();

    let (rows, queue) = mpsc::sync_channel::<Row>(producers * 2);
    let writer = std::thread::spawn(move || {
        let mut written = 0_u64;
        let mut batch = Vec::new();
        while let Ok(first) = queue.recv() {
            batch.push(first);
            batch.extend(queue.try_iter().take(511));
            connection.execute_batch("BEGIN IMMEDIATE").unwrap();
            {
                let mut insert = connection
                    .prepare_cached("INSERT INTO inbox VALUES (?1, 'charge.succeeded', ?2, 1713745200, ?3, 'pending', ?3) ON CONFLICT DO NOTHING")
                    .unwrap();
                for row in &batch {
                    insert
                        .execute(params![row.id, row.body, 1_713_745_200_000_i64])
                        .unwrap();
                }
            }
            connection.execute_batch("COMMIT").unwrap();
            written += batch.len() as u64;
            for row in batch.drain(..) {
                let _ = row.done.send(());
            }
        }
        written
    });

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|producer| {
            let (rows, body) = (rows.clone(), body.clone());
            std::thread::spawn(move || {
                let (done, committed) = mpsc::sync_channel(1);
                let mut n = 0_u64;
                while Instant::now() < deadline {
                    let id = format!("evt_{producer}_{n}");
                    rows.send(Row {
                        id,
                        body: body.clone(),
                        done: done.clone(),
                    })
                    .unwrap();
                    committed.recv().unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    drop(rows);
    for thread in threads {
        thread.join().unwrap();
    }
    let elapsed = started.elapsed();
    let written = writer.join().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    println!(
        "{written} rows in {:.1} s by {producers} producers, synchronous={synchronous}",
        elapsed.as_secs_f64()
    );
    println!(
        "FLOOR rows_per_second {:.0}",
        written as f64 / elapsed.as_secs_f64()
    );
}
