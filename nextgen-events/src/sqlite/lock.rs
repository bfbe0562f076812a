//! The lock that makes one process's workers a SQLite inbox's only workers: `<file>.lock`.
//!
//! Recovery after a crash resets what the file shows running to pending; with a second
//! process's workers on the same file that would reset live work. The lock is an advisory
//! exclusive lock (`flock`) on a file beside the inbox, held by the workers and released by the
//! operating system when the process dies, so a `kill -9` never leaves it stale. Its text names
//! the holder for the error the next process shows.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::idempotency::StoreError;
use crate::inbox::WorkersLock;

/// The lock file of the inbox at `path`: the file's name with `.lock` added.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the workers' lock of the inbox at `path`, or says who holds it.
pub(crate) fn lock_workers(path: &Path) -> Result<WorkersLock, StoreError> {
    let lock = lock_path(path);
    let failed = |error: std::io::Error| {
        StoreError::Unavailable(format!(
            "could not take the workers' lock `{}` of the SQLite inbox: {error}",
            lock.display()
        ))
    };
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&lock).map_err(failed)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(StoreError::Locked {
                path: path.to_owned(),
                holder: holder_of(&mut file),
                lock,
            });
        }
        Err(TryLockError::Error(error)) => return Err(failed(error)),
    }
    let written = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(holder().as_bytes()));
    if let Err(error) = written {
        // The lock holds without its text; only the next process's message is poorer.
        tracing::warn!(%error, lock = %lock.display(), "could not write the holder into the workers' lock file");
    }
    Ok(WorkersLock::new(file))
}

/// Who this process is, as the lock file says it.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "an unknown host".to_owned());
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    format!(
        "process {} on {host}, since Unix time {since}",
        std::process::id()
    )
}

/// What the holder wrote into the lock file, made safe to show.
fn holder_of(file: &mut File) -> String {
    let mut text = String::new();
    let read = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.take(256).read_to_string(&mut text));
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    match read {
        Ok(_) if !text.trim().is_empty() => text.trim().to_owned(),
        _ => "a process that did not say who it is".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_second_lock_names_the_first_holder_and_a_dropped_lock_frees_the_file() {
        let dir = std::env::temp_dir().join(format!("nextgen-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("inbox.sqlite3");
        let first = lock_workers(&path).unwrap();
        let refused = lock_workers(&path).unwrap_err();
        let message = refused.to_string();
        assert!(
            matches!(&refused, StoreError::Locked { holder, .. }
                if holder.contains(&format!("process {}", std::process::id()))),
            "{message}"
        );
        assert!(message.contains("inbox.sqlite3.lock"), "{message}");
        drop(first);
        let again = lock_workers(&path).unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_holder_names_this_process_and_its_host() {
        let holder = holder();
        assert!(
            holder.starts_with(&format!("process {} on ", std::process::id())),
            "{holder}"
        );
        if let Some(host) = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|host| host.trim().to_owned())
            .filter(|host| !host.is_empty())
        {
            assert!(holder.contains(&format!(" on {host}, since")), "{holder}");
        }
    }

    #[test]
    fn a_lock_file_that_says_nothing_is_shown_as_such() {
        let dir = std::env::temp_dir().join(format!("nextgen-holder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("blank.lock");
        for (written, shown) in [
            (" \n\t ", "a process that did not say who it is"),
            ("process 7 on db-1\n", "process 7 on db-1"),
            ("\u{1b}[31mprocess 8\u{7}", "[31mprocess 8"),
        ] {
            std::fs::write(&path, written).unwrap();
            let mut file = File::open(&path).unwrap();
            assert_eq!(holder_of(&mut file), shown, "{written:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
