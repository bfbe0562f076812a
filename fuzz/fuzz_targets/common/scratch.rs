//! The SQLite file of a fuzz target that writes one: in memory-backed `/dev/shm` when there is
//! one (every input writes), in the temp directory otherwise, named by the target and the
//! process id. libFuzzer ends the process without running destructors, so each start removes
//! the files that processes no longer running left behind.

use std::path::{Path, PathBuf};

/// A fresh path for this process's SQLite file of `target`; its old files and those of ended
/// processes are removed.
pub fn sqlite_path(target: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    };
    let prefix = format!("nextgen-fuzz-{target}-");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|name| name.strip_prefix(&prefix)) else {
                continue;
            };
            let pid = rest.split('.').next().unwrap_or_default();
            let ended = pid.parse::<u32>().is_ok_and(|pid| {
                pid == std::process::id() || !Path::new(&format!("/proc/{pid}")).exists()
            });
            if ended {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    dir.join(format!("{prefix}{}.sqlite3", std::process::id()))
}
