//! The lock that makes one process's workers a SQLite inbox's only workers: `<file>.lock`.
//!
//! Recovery after a crash resets what the file shows running to pending; with a second
//! process's workers on the same file that would reset live work. The lock is an advisory
//! exclusive lock (`flock`) on a file beside the inbox, held by the workers and released by the
//! operating system when the process dies, so a `kill -9` never leaves it stale. Its text names
//! the holder for the error the next process shows.
//!
//! The lock is keyed on the file, not on the path as written: the lock file sits beside the
//! file's canonical path (symlinks, `./` and `..` resolved), so every name that leads to the
//! file through links of directories or of the file leads to one lock. A hard link is another
//! name for the same file (same device and inode) that no path resolution finds; SQLite keeps
//! its write-ahead log and journal by name, so processes opening one file by two names
//! corrupt it (<https://sqlite.org/howtocorrupt.html>, "multiple links to the same file").
//! Workers are refused on a file with more than one hard link, whichever name they use.

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
///
/// The lock file is named after the file's canonical path, so that a symlink or a relative
/// path to the file takes the same lock; a file with another hard link is refused (see the
/// module documentation).
pub(crate) fn lock_workers(path: &Path) -> Result<WorkersLock, StoreError> {
    let canonical = std::fs::canonicalize(path).map_err(|error| {
        StoreError::Unavailable(format!(
            "could not resolve the SQLite inbox `{}` to take its workers' lock: {error}",
            path.display()
        ))
    })?;
    refuse_hard_links(path, &canonical)?;
    let lock = lock_path(&canonical);
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
                resource: format!("the workers of the SQLite inbox `{}`", path.display()),
                holder: holder_of(&mut file),
                lock: format!("the lock file `{}`", lock.display()),
                fix: "run the workers of one process per SQLite inbox (other processes may take deliveries in with 0 workers), or share a Redis inbox between replicas",
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

/// Refuses a file that has more than one name on its device (hard links): a lock beside one
/// name is not found from another, and SQLite keeps its log by name.
#[cfg(unix)]
fn refuse_hard_links(path: &Path, canonical: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(canonical).map_err(|error| {
        StoreError::Unavailable(format!(
            "could not read the SQLite inbox `{}` to take its workers' lock: {error}",
            path.display()
        ))
    })?;
    if metadata.nlink() > 1 {
        return Err(StoreError::Unavailable(format!(
            "the SQLite inbox `{}` has {} hard links (device {}, inode {}): workers on another name would not see this name's lock, and SQLite keeps its write-ahead log by name, so two names corrupt the file; remove the other links and open the file by one name (a symlink is fine)",
            path.display(),
            metadata.nlink(),
            metadata.dev(),
            metadata.ino()
        )));
    }
    Ok(())
}

/// Hard links cannot be counted portably here; the canonical path still resolves symlinks.
#[cfg(not(unix))]
fn refuse_hard_links(_path: &Path, _canonical: &Path) -> Result<(), StoreError> {
    Ok(())
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
        std::fs::write(&path, "").unwrap();
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

    /// A fresh directory with an (empty) inbox file in it.
    fn inbox_file(label: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("nextgen-lock-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("inbox.sqlite3");
        std::fs::write(&path, "").unwrap();
        (dir, path)
    }

    /// `path` relative to the working directory, starting with `./`.
    fn relative(path: &Path) -> PathBuf {
        let cwd = std::env::current_dir().unwrap();
        let mut relative = PathBuf::from(".");
        for _ in cwd.components().skip(1) {
            relative.push("..");
        }
        relative.join(path.strip_prefix("/").unwrap())
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_and_a_relative_path_to_the_file_take_its_one_lock() {
        let (dir, path) = inbox_file("names");
        let link = dir.join("link.sqlite3");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let linked_dir =
            std::env::temp_dir().join(format!("nextgen-lock-dirlink-{}", std::process::id()));
        let _ = std::fs::remove_file(&linked_dir);
        std::os::unix::fs::symlink(&dir, &linked_dir).unwrap();
        let names = [
            link.clone(),
            relative(&path),
            dir.join(".").join("inbox.sqlite3"),
            linked_dir.join("inbox.sqlite3"),
        ];
        let first = lock_workers(&path).unwrap();
        for name in &names {
            let refused = lock_workers(name).expect_err("another name of a locked file");
            assert!(
                matches!(refused, StoreError::Locked { .. }),
                "{name:?}: {refused}"
            );
        }
        drop(first);
        // And the other way round: a lock taken through a name holds the file.
        for name in &names {
            let held = lock_workers(name).unwrap();
            assert!(
                matches!(lock_workers(&path), Err(StoreError::Locked { .. })),
                "{name:?}"
            );
            drop(held);
        }
        std::fs::remove_file(&linked_dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_file_with_a_hard_link_gets_no_workers_by_either_name() {
        let (dir, path) = inbox_file("hard");
        let first = lock_workers(&path).unwrap();
        let other = dir.join("hard.sqlite3");
        std::fs::hard_link(&path, &other).unwrap();
        // The lock taken before the link was made still holds, and no name gets another.
        for name in [&other, &path] {
            let refused = lock_workers(name).expect_err("a second name of the file");
            let message = refused.to_string();
            assert!(message.contains("2 hard links"), "{message}");
            assert!(message.contains("remove the other links"), "{message}");
        }
        drop(first);
        assert!(lock_workers(&other).is_err());
        std::fs::remove_file(&other).unwrap();
        drop(lock_workers(&path).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
