//! `nextgen inbox`: looks into a webhook inbox and puts deliveries back to pending, without
//! the app's code.
//!
//! ```text
//! nextgen inbox --sqlite webhooks.sqlite3 stats
//! nextgen inbox --sqlite webhooks.sqlite3 list --state dead
//! nextgen inbox --sqlite webhooks.sqlite3 list --state dead --after evt_123
//! nextgen inbox --sqlite webhooks.sqlite3 list --handler (payload)
//! nextgen inbox --sqlite webhooks.sqlite3 show evt_123 --body
//! nextgen inbox --sqlite webhooks.sqlite3 replay evt_123 evt_456
//! nextgen inbox --sqlite webhooks.sqlite3 replay --dead --since 2026-11-25T08:00:00Z
//! nextgen inbox --sqlite webhooks.sqlite3 replay evt_123 --rerun app::send_receipt
//! nextgen inbox --redis redis://127.0.0.1:6379/ --prefix nextgen:example stats
//! nextgen inbox --inbox 'redis://127.0.0.1:6379/?prefix=nextgen:example' stats
//! nextgen inbox --postgres postgres://app@db.internal/payments stats
//! nextgen inbox --postgres postgres://app@db.internal/payments --schema billing list --json
//! ```
//!
//! `--inbox URL` names the inbox as the library's opener reads it (`sqlite:PATH` or a path,
//! `redis://...?prefix=P`, `postgres://...[?schema=S]`; see `nextgen_events::backend`). The
//! shorthands: `--sqlite PATH` opens the file of a SQLite inbox (the example server's
//! `NEXTGEN_INBOX_SQLITE`); `--redis URL --prefix P` the Redis inbox whose keys start with
//! `P:inbox:` (the example server's `NEXTGEN_INBOX_REDIS` and `NEXTGEN_INBOX_PREFIX`, by default
//! `nextgen:example`); `--postgres URL [--schema S]` the PostgreSQL inbox whose tables are in
//! the schema `S` of that database (`nextgen` when not given, as the library's default; the
//! example server's `NEXTGEN_INBOX_URL=postgres://...`).
//!
//! A replay puts deliveries back to pending: the app's workers take them again, and the
//! handlers that already succeeded for them stay skipped. `replay ID --rerun HANDLER` also runs
//! one handler that had succeeded for the entry once more (its done marker is removed with the
//! replay, in one step), and the entry records it. `--json` prints one JSON document on
//! stdout instead of text; errors still go to stderr.
//!
//! Exit status: 0 on success; 1 when the inbox could not be opened or failed, or an id is
//! unknown (or held by a worker, for `replay`; or, for `--rerun`, the handler is not done for
//! the entry); 2 for a usage error (bad arguments, no file at the `--sqlite` path, no inbox
//! under the `--redis` URL's `--prefix`, no inbox in the `--postgres` database's `--schema`).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::Failure;
use crate::shown::{clean, clean_body};
use clap::{ArgGroup, Args as ClapArgs, Parser, Subcommand};
use nextgen_events::backend::{Access, BackendUrl, OpenError, open_inbox};
use nextgen_events::idempotency::StoreError;
use nextgen_events::inbox::{
    InboxOperator, InboxRecord, InboxState, InboxStats, ListCursor, ListFilter, Rerun,
};
use serde_json::json;

/// How many entries `list` shows by default.
const DEFAULT_LIMIT: u64 = 50;

/// How many characters of a handler's error `list` shows.
const ERROR_WIDTH: usize = 60;

/// The environment variable the example server opens its SQLite inbox from.
const INBOX_SQLITE_ENV: &str = "NEXTGEN_INBOX_SQLITE";

/// The environment variables the example server opens its Redis inbox from, and its default
/// key prefix.
const INBOX_REDIS_ENV: &str = "NEXTGEN_INBOX_REDIS";
const INBOX_PREFIX_ENV: &str = "NEXTGEN_INBOX_PREFIX";
const EXAMPLE_PREFIX: &str = "nextgen:example";

/// The environment variable the example server opens an inbox from by URL (a PostgreSQL one
/// among them).
const INBOX_URL_ENV: &str = "NEXTGEN_INBOX_URL";

/// Look into a webhook inbox and replay deliveries, without the app's code.
#[derive(Debug, Parser)]
#[command(name = "inbox")]
pub(crate) struct Args {
    /// The inbox's URL: `sqlite:PATH` (or a path), `redis://[user:password@]host[:port][/db]?prefix=P`,
    /// `postgres://[user[:password]@]host[:port]/database[?schema=S]`.
    #[arg(long, value_name = "URL", global = true, help_heading = "Inbox")]
    inbox: Option<String>,

    /// The SQLite inbox file (required: the server's NEXTGEN_INBOX_SQLITE file).
    #[arg(long, value_name = "PATH", global = true, help_heading = "Inbox")]
    sqlite: Option<PathBuf>,

    /// The Redis of a Redis inbox, `redis://[user:password@]host[:port][/db]` (the server's
    /// NEXTGEN_INBOX_REDIS); with --prefix.
    #[arg(long, value_name = "URL", global = true, help_heading = "Inbox")]
    redis: Option<String>,

    /// The Redis inbox's key prefix (required with --redis: the server's NEXTGEN_INBOX_PREFIX,
    /// `nextgen:example` for the example server by default).
    #[arg(long, value_name = "P", global = true, help_heading = "Inbox")]
    prefix: Option<String>,

    /// The database of a PostgreSQL inbox, `postgres://[user[:password]@]host[:port]/database`
    /// (with sqlx's parameters such as `sslmode`); its schema with --schema.
    #[arg(long, value_name = "URL", global = true, help_heading = "Inbox")]
    postgres: Option<String>,

    /// With --postgres: the schema the inbox's tables are in (the app's; `nextgen` when not
    /// given, as the library's default).
    #[arg(long, value_name = "S", global = true, help_heading = "Inbox")]
    schema: Option<String>,

    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// How many entries are pending, retrying, running, handled and dead, and since when the
    /// oldest pending one waits.
    Stats,
    /// Entries, newest first.
    List(ListArgs),
    /// One entry: its fields, attempts and each failing handler's last error.
    Show(ShowArgs),
    /// Put entries back to pending; handlers that already succeeded stay skipped, but the one
    /// `--rerun` names.
    Replay(ReplayArgs),
}

#[derive(Debug, ClapArgs)]
struct ListArgs {
    /// Only entries in this state: pending, retrying, running, handled or dead.
    #[arg(long, value_name = "STATE")]
    state: Option<InboxState>,

    /// Only entries of this event type, such as `charge.succeeded`.
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    event_type: Option<String>,

    /// Only entries whose last errors include one of this handler's (its name as `show`
    /// prints it, such as `(payload)`).
    #[arg(long, value_name = "NAME")]
    handler: Option<String>,

    /// Only entries after this one in the list: the next page, after the last ID of the page
    /// before.
    #[arg(long, value_name = "ID")]
    after: Option<String>,

    /// At most this many entries.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIMIT,
          value_parser = clap::value_parser!(u64).range(1..))]
    limit: u64,
}

#[derive(Debug, ClapArgs)]
struct ShowArgs {
    /// The event id, such as `evt_1N2b3C4d5E6f`.
    #[arg(value_name = "ID")]
    id: String,

    /// Print the body too, byte for byte as it was signed.
    #[arg(long)]
    body: bool,
}

#[derive(Debug, ClapArgs)]
#[command(group(ArgGroup::new("which").required(true).args(["ids", "dead"])))]
struct ReplayArgs {
    /// The event ids to replay.
    #[arg(value_name = "ID")]
    ids: Vec<String>,

    /// Replay every dead letter.
    #[arg(long)]
    dead: bool,

    /// With --dead: only those received at or after TIME (RFC 3339 such as
    /// `2026-11-25T08:00:00Z`, or Unix seconds).
    #[arg(long, value_name = "TIME", conflicts_with = "ids", value_parser = parse_time)]
    since: Option<u64>,

    /// With one ID: run this handler, which had succeeded for the entry, once more (its name
    /// as a refusal lists it, such as `app::send_receipt`); the entry records the rerun. For
    /// a handler that succeeded with a bug since fixed: its effect must be safe to apply again.
    #[arg(long, value_name = "HANDLER", conflicts_with_all = ["dead", "since"])]
    rerun: Option<String>,
}

pub(crate) fn main(args: &Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let failures = runtime.block_on(run(args));
    match failures {
        Ok(()) => ExitCode::SUCCESS,
        Err(failures) => {
            let status = failures.iter().map(|f| f.status).max().unwrap_or(1);
            for failure in failures {
                eprintln!("error: {}", readable_times(&failure.message));
            }
            ExitCode::from(status)
        }
    }
}

async fn run(args: &Args) -> Result<(), Vec<Failure>> {
    // Only a replay writes: the other commands open the inbox read-only.
    let access = match args.command {
        Command::Replay(_) => Access::Operate,
        _ => Access::Inspect,
    };
    let url = backend(args).map_err(|f| vec![f])?;
    let inbox = open_inbox(&url, access)
        .await
        .map_err(|error| vec![open_failure(&error, &url)])?
        .operator();
    match &args.command {
        Command::Stats => stats(&*inbox, args.json).await.map_err(|f| vec![f]),
        Command::List(list_args) => list(&*inbox, list_args, args.json)
            .await
            .map_err(|f| vec![f]),
        Command::Show(show_args) => show(&*inbox, show_args, args.json)
            .await
            .map_err(|f| vec![f]),
        Command::Replay(replay_args) => replay(&*inbox, replay_args, args.json).await,
    }
}

/// The inbox the options name: `--inbox URL`, or a shorthand.
fn backend(args: &Args) -> Result<BackendUrl, Failure> {
    let named = [
        args.inbox.is_some(),
        args.sqlite.is_some(),
        args.redis.is_some(),
        args.postgres.is_some(),
    ];
    if named.iter().filter(|named| **named).count() > 1 {
        return Err(Failure::usage(
            "name the inbox once: --inbox URL, --sqlite PATH, --redis URL or --postgres URL",
        ));
    }
    if args.prefix.is_some() && args.redis.is_none() {
        return Err(Failure::usage(
            "--prefix names the keys of a Redis inbox: it goes with --redis (with --inbox, write `?prefix=P` in the URL)",
        ));
    }
    if args.schema.is_some() && args.postgres.is_none() {
        return Err(Failure::usage(
            "--schema names the schema of a PostgreSQL inbox: it goes with --postgres (with --inbox, write `?schema=S` in the URL)",
        ));
    }
    match (&args.inbox, &args.sqlite, &args.redis, &args.postgres) {
        (Some(url), ..) => {
            BackendUrl::parse(url).map_err(|error| Failure::usage(error.to_string()))
        }
        (_, Some(path), ..) => Ok(BackendUrl::sqlite(path.clone())),
        (_, _, _, Some(url)) => postgres(url, args.schema.as_deref()),
        (_, _, Some(url), _) => match &args.prefix {
            Some(prefix) => Ok(BackendUrl::Redis {
                url: url.clone(),
                prefix: Some(prefix.clone()),
            }),
            None => Err(Failure::usage(format!(
                "--redis needs --prefix P, the key prefix of the inbox (the server's {INBOX_PREFIX_ENV}; the example server's is {EXAMPLE_PREFIX} by default)"
            ))),
        },
        (None, None, None, None) => Err(Failure::usage(format!(
            "name the inbox to open: --inbox URL, --sqlite PATH (the file the server opens from {INBOX_SQLITE_ENV}), --redis URL --prefix P or --postgres URL [--schema S]"
        ))),
    }
}

/// `--postgres URL [--schema S]`: the URL read as the opener reads it, a `postgres://` one
/// only, with the schema of `--schema` or of the URL's `?schema=S` (not both).
fn postgres(url: &str, schema: Option<&str>) -> Result<BackendUrl, Failure> {
    let parsed = BackendUrl::parse(url).map_err(|error| Failure::usage(error.to_string()))?;
    let BackendUrl::Postgres {
        url,
        schema: in_url,
    } = parsed
    else {
        return Err(Failure::usage(format!(
            "--postgres takes a PostgreSQL URL, `postgres://[user[:password]@]host[:port]/database`, not `{parsed}` (use --inbox URL for any backend)"
        )));
    };
    let schema = match (schema, in_url) {
        (Some(_), Some(_)) => {
            return Err(Failure::usage(
                "the schema is named twice, by --schema and by the URL's `?schema=S`: keep one",
            ));
        }
        (Some(schema), None) => Some(schema.to_owned()),
        (None, in_url) => in_url,
    };
    Ok(BackendUrl::Postgres { url, schema })
}

/// What the opener's refusal means here: a usage error when the inbox named is not one (the
/// URL, the feature, a missing inbox), a failure when it could not be reached.
fn open_failure(error: &OpenError, opened: &BackendUrl) -> Failure {
    match error {
        OpenError::Store { url, source } => {
            store_failure(&format!("open the inbox at {url}"), source)
        }
        OpenError::NoInbox { .. } if matches!(opened, BackendUrl::Postgres { .. }) => {
            Failure::usage(format!(
                "{error} (the server creates it on first start with {INBOX_URL_ENV}=postgres://...; with --postgres, name its schema with --schema S)"
            ))
        }
        OpenError::NoInbox { .. } => Failure::usage(format!(
            "{error} (the server creates it on first start with {INBOX_SQLITE_ENV}, or {INBOX_REDIS_ENV} and {INBOX_PREFIX_ENV}, or {INBOX_URL_ENV})"
        )),
        OpenError::NotBuilt { feature, .. } => Failure::usage(format!(
            "{error}; for this tool, build nextgen-cli with its feature `{feature}` (a default one)"
        )),
        other => Failure::usage(other.to_string()),
    }
}

/// The inbox's error, with what was being done.
fn store_failure(doing: &str, error: &StoreError) -> Failure {
    match error {
        // The message says what failed; "the idempotency store failed" would mislead here.
        StoreError::Unavailable(message) => {
            Failure::failed(format!("could not {doing}: {message}"))
        }
        other => Failure::failed(format!("could not {doing}: {other}")),
    }
}

/// Prints a JSON document (a `serde_json::to_string_pretty` result) on stdout.
fn print_json(document: serde_json::Result<String>) -> Result<(), Failure> {
    let text =
        document.map_err(|error| Failure::failed(format!("could not write JSON: {error}")))?;
    println!("{text}");
    Ok(())
}

async fn stats(inbox: &dyn InboxOperator, json: bool) -> Result<(), Failure> {
    let stats = inbox
        .stats()
        .await
        .map_err(|error| store_failure("count the entries", &error))?;
    if json {
        print_json(serde_json::to_string_pretty(&stats))?;
    } else {
        print!("{}", stats_text(&stats, crate::verify::unix_now()));
    }
    Ok(())
}

/// The counts, one a line, then when the oldest pending entry was received and how long ago
/// (`now`, Unix seconds), when one waits.
fn stats_text(stats: &InboxStats, now: u64) -> String {
    let counts = [
        ("pending", stats.pending),
        ("retrying", stats.retrying),
        ("running", stats.running),
        ("handled", stats.handled),
        ("dead", stats.dead),
    ];
    let mut text: String = counts
        .iter()
        .map(|(name, count)| format!("{name:<9} {count}\n"))
        .collect();
    if let Some(oldest) = stats.oldest_pending_at_ms {
        text.push_str(&format!(
            "oldest pending: {} ({})\n",
            rfc3339(oldest),
            crate::verify::age(oldest / 1000, now)
        ));
    }
    text
}

async fn list(inbox: &dyn InboxOperator, args: &ListArgs, json: bool) -> Result<(), Failure> {
    // The page after an entry starts at its place in the list: its receipt time and id.
    let after = match &args.after {
        Some(id) => {
            let record = inbox
                .show(id, false)
                .await
                .map_err(|error| store_failure(&format!("read `{id}`"), &error))?
                .ok_or_else(|| {
                    Failure::failed(format!(
                        "unknown event id `{}` after --after: list from the start, or after another id",
                        clean(id)
                    ))
                })?;
            Some(ListCursor::after(&record))
        }
        None => None,
    };
    let filter = ListFilter {
        state: args.state,
        event_type: args.event_type.clone(),
        handler: args.handler.clone(),
        after,
        limit: usize::try_from(args.limit).unwrap_or(usize::MAX),
    };
    let records = inbox
        .list(filter)
        .await
        .map_err(|error| store_failure("list the entries", &error))?;
    if json {
        print_json(serde_json::to_string_pretty(&records))?;
    } else if records.is_empty() {
        println!("{}", no_entries(args));
    } else {
        print!("{}", list_text(&records));
    }
    // A misspelt type finds nothing, which would read as an empty inbox: say which catalog
    // type was probably meant (on stderr with --json, so stdout stays one JSON document).
    if records.is_empty()
        && json
        && let Some(hint) = args.event_type.as_deref().and_then(did_you_mean)
    {
        eprintln!("note: {hint}");
    }
    Ok(())
}

/// What an empty listing says: what was asked for, and, for a type the catalog does not know,
/// the catalog type closest to it.
fn no_entries(args: &ListArgs) -> String {
    let mut text = match args.state {
        Some(state) => format!("no {} entries", state.as_str()),
        None => "no entries".to_owned(),
    };
    if let Some(event_type) = &args.event_type {
        text.push_str(&format!(" of type `{}`", clean(event_type)));
    }
    if let Some(handler) = &args.handler {
        text.push_str(&format!(" failed by `{}`", clean(handler)));
    }
    if let Some(after) = &args.after {
        text.push_str(&format!(" after `{}`", clean(after)));
    }
    if let Some(hint) = args.event_type.as_deref().and_then(did_you_mean) {
        text.push_str(&format!(": {hint}"));
    }
    text
}

/// "did you mean `refund.created`?" for a type the catalog does not know but has one close
/// to; `None` for a catalog type, or one nothing is close to (an inbox also keeps types the
/// catalog does not know, for `*` handlers).
fn did_you_mean(event_type: &str) -> Option<String> {
    if nextgen_events::catalog::lookup(event_type).is_some() {
        return None;
    }
    nextgen_events::catalog::suggest(event_type).map(|name| format!("did you mean `{name}`?"))
}

/// One line per record, aligned, under a heading.
fn list_text(records: &[InboxRecord]) -> String {
    let rows: Vec<[String; 6]> = records
        .iter()
        .map(|record| {
            [
                clean(&record.event_id).into_owned(),
                clean(&record.event_type).into_owned(),
                record.state.as_str().to_owned(),
                record.attempts.to_string(),
                rfc3339(record.received_at_ms),
                short_error(record),
            ]
        })
        .collect();
    let heading = ["ID", "TYPE", "STATE", "ATTEMPTS", "RECEIVED", "ERROR"].map(str::to_owned);
    let mut widths = heading.clone().map(|title| title.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    std::iter::once(&heading)
        .chain(&rows)
        .map(|row| {
            let mut line = String::new();
            for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
                if column + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  "));
                }
            }
            format!("{}\n", line.trim_end())
        })
        .collect()
}

/// The first failing handler's error, shortened, for a retrying or dead entry.
fn short_error(record: &InboxRecord) -> String {
    if !matches!(record.state, InboxState::Retrying | InboxState::Dead) {
        return String::new();
    }
    let Some(first) = record.last_errors.first() else {
        return String::new();
    };
    let handler = clean(&first.handler).into_owned();
    let error = readable_times(&clean(&first.error.replace('\n', " ")));
    let mut text = shorten(&handler, &error, ERROR_WIDTH);
    if record.last_errors.len() > 1 {
        text.push_str(&format!(" (+{} more)", record.last_errors.len() - 1));
    }
    text
}

/// `handler: error` in at most `width` characters, keeping what explains the error.
///
/// An error reads from context to cause (`the event's payload does not fit `Refund`:
/// data.object.amount: invalid type ...`), so a cut at the end would keep the context and
/// lose the cause. When the error names a JSON path, the line keeps it and what follows,
/// dropping the context before it; otherwise the middle goes, so both the start (what was
/// being done) and the end (why it failed) stay.
fn shorten(handler: &str, error: &str, width: usize) -> String {
    let whole = format!("{handler}: {error}");
    if whole.chars().count() <= width {
        return whole;
    }
    // How many characters at the start must stay: the `…` and the path, when there is one.
    let (error, kept) = match json_path_start(error) {
        Some(start) => {
            let from_path = &error[start..];
            let path = from_path.split(": ").next().unwrap_or(from_path);
            (format!("…{from_path}"), 1 + path.chars().count())
        }
        None => (error.to_owned(), 0),
    };
    let text = format!("{handler}: {error}");
    let length = text.chars().count();
    if length <= width {
        return text;
    }
    // The handler's name stays whole; the error gets the rest of the width, its start (the
    // path, when there is one) and its end around one `…`.
    let prefix = handler.chars().count() + 2;
    let room = width.saturating_sub(prefix + 1);
    let chars: Vec<char> = error.chars().collect();
    if room < 16 || chars.len() <= room {
        // The handler's name leaves too little room for a cut error to say anything.
        return text;
    }
    let mut head = (room / 2).max(kept).min(room.saturating_sub(8)).max(1);
    let mut tail_start = chars.len() - (room - head);
    // Cut between words where one ends near the cut, so no word is left half.
    if let Some(space) = (kept.max(head - head / 3)..head)
        .rev()
        .find(|&i| chars[i] == ' ')
    {
        head = space;
    }
    let tail_room = chars.len() - tail_start;
    if let Some(space) = (tail_start..tail_start + tail_room / 3).find(|&i| chars[i] == ' ') {
        tail_start = space + 1;
    }
    let start: String = chars[..head].iter().collect();
    let end: String = chars[tail_start..].iter().collect();
    format!("{handler}: {}…{}", start.trim_end(), end.trim_start())
}

/// Where the first `: `-separated part of `error` that is a JSON path (`data.object.amount`,
/// `data.object.refunds[0]`) begins: what a payload error is explained by.
fn json_path_start(error: &str) -> Option<usize> {
    let is_path = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && part.contains(['.', '['])
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
    };
    let mut offset = 0;
    for part in error.split(": ") {
        // The first part is the context itself, never worth dropping for.
        if offset > 0 && is_path(part) {
            return Some(offset);
        }
        offset += part.len() + 2;
    }
    None
}

/// `text` with each `Unix time SECONDS` (as the library's errors write a time, say a lock's
/// or a signature's) written as RFC 3339, so every time the tool prints reads as a time.
fn readable_times(text: &str) -> String {
    const MARK: &str = "Unix time ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + MARK.len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match after[..digits]
            .parse::<u64>()
            .ok()
            .and_then(|s| s.checked_mul(1000))
        {
            Some(ms) if digits > 0 => out.push_str(&rfc3339(ms)),
            _ => out.push_str(&rest[at..at + MARK.len() + digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

async fn show(inbox: &dyn InboxOperator, args: &ShowArgs, json: bool) -> Result<(), Failure> {
    let record = inbox
        .show(&args.id, args.body)
        .await
        .map_err(|error| store_failure(&format!("read `{}`", args.id), &error))?
        .ok_or_else(|| Failure::failed(format!("unknown event id `{}`", clean(&args.id))))?;
    if json {
        print_json(serde_json::to_string_pretty(&record))?;
    } else {
        print!("{}", show_text(&record, args.body));
    }
    Ok(())
}

fn show_text(record: &InboxRecord, with_body: bool) -> String {
    let time = |ms: Option<u64>| ms.map(rfc3339);
    let fields = [
        ("id", Some(clean(&record.event_id).into_owned())),
        ("type", Some(clean(&record.event_type).into_owned())),
        ("state", Some(record.state.as_str().to_owned())),
        ("attempts", Some(record.attempts.to_string())),
        ("received", Some(rfc3339(record.received_at_ms))),
        (
            "signed",
            Some(rfc3339(record.signed_at.saturating_mul(1000))),
        ),
        ("due", time(record.due_at_ms)),
        ("first failed", time(record.first_failed_at_ms)),
        ("finished", time(record.finished_at_ms)),
    ];
    let mut text = String::new();
    for (name, value) in fields {
        if let Some(value) = value {
            text.push_str(&format!("{:<13} {value}\n", format!("{name}:")));
        }
    }
    if !record.reruns.is_empty() {
        text.push_str("reruns:\n");
        for rerun in &record.reruns {
            text.push_str(&format!(
                "  {} at {}\n",
                clean(&rerun.handler),
                rfc3339(rerun.at_ms)
            ));
        }
    }
    if record.last_errors.is_empty() {
        text.push_str("errors:       none\n");
    } else {
        text.push_str("errors:\n");
        for failure in &record.last_errors {
            text.push_str(&format!(
                "  {}: {}\n",
                clean(&failure.handler),
                readable_times(&clean(&failure.error))
            ));
        }
    }
    match (&record.body, with_body) {
        (Some(body), _) => {
            text.push_str("body:\n");
            text.push_str(&clean_body(body));
            if !body.ends_with('\n') {
                text.push('\n');
            }
        }
        (None, true) => text.push_str("body:         (none)\n"),
        (None, false) => text.push_str("body:         (--body shows it)\n"),
    }
    text
}

async fn replay(
    inbox: &dyn InboxOperator,
    args: &ReplayArgs,
    json: bool,
) -> Result<(), Vec<Failure>> {
    if args.dead {
        return replay_dead(inbox, args.since, json)
            .await
            .map_err(|f| vec![f]);
    }
    if let Some(handler) = &args.rerun {
        let [id] = args.ids.as_slice() else {
            return Err(vec![Failure::usage(format!(
                "--rerun runs a handler of one entry: name exactly one ID (got {})",
                args.ids.len()
            ))]);
        };
        return rerun(inbox, id, handler, json).await.map_err(|f| vec![f]);
    }
    // Each id once, in the order given.
    let mut ids: Vec<String> = Vec::new();
    for id in &args.ids {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let replayed = inbox
        .replay(&ids)
        .await
        .map_err(|error| vec![store_failure("replay", &error)])?;
    let mut unknown = Vec::new();
    let mut running = Vec::new();
    for id in ids.iter().filter(|id| !replayed.contains(id)) {
        // The inbox leaves an entry a worker holds alone; anything else not replayed is unknown.
        match inbox.show(id, false).await {
            Ok(Some(_)) => running.push(id.clone()),
            Ok(None) => unknown.push(id.clone()),
            Err(error) => return Err(vec![store_failure(&format!("read `{id}`"), &error)]),
        }
    }
    if json {
        print_json(serde_json::to_string_pretty(
            &json!({ "replayed": replayed, "unknown": unknown, "running": running }),
        ))
        .map_err(|f| vec![f])?;
    } else {
        for id in &replayed {
            println!("replayed {}", clean(id));
        }
        if !replayed.is_empty() {
            println!("{}", replayed_note(replayed.len()));
        }
    }
    let failures: Vec<Failure> = running
        .iter()
        .map(|id| {
            Failure::failed(format!(
                "`{}` was not replayed: it is running (a worker holds it; if the server died, it is taken again at its restart or when the lease lapses)",
                clean(id)
            ))
        })
        .chain(
            unknown
                .iter()
                .map(|id| Failure::failed(format!("unknown event id `{}`", clean(id)))),
        )
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

async fn replay_dead(
    inbox: &dyn InboxOperator,
    since_ms: Option<u64>,
    json: bool,
) -> Result<(), Failure> {
    let report = inbox
        .replay_dead(since_ms)
        .await
        .map_err(|error| store_failure("replay the dead letters", &error))?;
    let (replayed, unknown) = (report.replayed, report.unknown);
    if json {
        print_json(serde_json::to_string_pretty(
            &json!({ "replayed": replayed, "unknown": unknown }),
        ))?;
        return Ok(());
    }
    // Listed as dead, but their entry is gone: the inbox dropped them from its index.
    for id in &unknown {
        println!(
            "unknown {} (listed as dead, its entry is gone: removed from the list)",
            clean(id)
        );
    }
    if replayed.is_empty() {
        match since_ms {
            Some(since) => println!("no dead letters received since {}", rfc3339(since)),
            None => println!("no dead letters"),
        }
        return Ok(());
    }
    for id in &replayed {
        println!("replayed {}", clean(id));
    }
    println!("{}", replayed_note(replayed.len()));
    Ok(())
}

/// `replay ID --rerun HANDLER`: says what happened in a sentence (or a JSON document), and
/// fails for each refusal, naming the handlers that are done when `handler` is not.
async fn rerun(
    inbox: &dyn InboxOperator,
    id: &str,
    handler: &str,
    json: bool,
) -> Result<(), Failure> {
    let rerun = inbox
        .rerun(id, handler)
        .await
        .map_err(|error| store_failure(&format!("run `{handler}` again for `{id}`"), &error))?;
    if json {
        let (answer, done) = match &rerun {
            Rerun::PutBack => ("put_back", None),
            Rerun::NoEntry => ("no_entry", None),
            Rerun::NotDone { done } => ("not_done", Some(done)),
            Rerun::Running => ("running", None),
        };
        let mut document = json!({ "event_id": id, "handler": handler, "rerun": answer });
        if let Some(done) = done {
            document["done"] = json!(done);
        }
        print_json(serde_json::to_string_pretty(&document))?;
    }
    let (id, handler) = (clean(id), clean(handler));
    match rerun {
        Rerun::PutBack => {
            if !json {
                println!(
                    "{id} back to pending: the app's workers run {handler} once more for it, and the other handlers that already succeeded stay skipped; the entry records the rerun"
                );
            }
            Ok(())
        }
        Rerun::NoEntry => Err(Failure::failed(format!("unknown event id `{id}`"))),
        Rerun::NotDone { done } => {
            let done = if done.is_empty() {
                "no handler is done for it".to_owned()
            } else {
                let names: Vec<String> = done
                    .iter()
                    .map(|name| format!("`{}`", clean(name)))
                    .collect();
                format!("the handlers done for it: {}", names.join(", "))
            };
            Err(Failure::failed(format!(
                "`{handler}` did not succeed for `{id}` (it has no done marker), so there is nothing to run again; `replay {id}` runs a handler that did not succeed; {done}"
            )))
        }
        Rerun::Running => Err(Failure::failed(format!(
            "`{id}` was not put back: it is running (a worker holds it); run `{handler}` again once it is not (its attempt ends, or, if the server died, it is taken again at its restart or when the lease lapses)"
        ))),
    }
}

fn replayed_note(count: usize) -> String {
    let (entries, them) = if count == 1 {
        ("entry", "it")
    } else {
        ("entries", "them")
    };
    format!(
        "{count} {entries} back to pending: the app's workers take {them} again; handlers that already succeeded stay skipped"
    )
}

/// `ms` (Unix milliseconds) as RFC 3339 in UTC, to the second: `2026-11-25T08:00:00Z`.
fn rfc3339(ms: u64) -> String {
    i64::try_from(ms / 1000)
        .ok()
        .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
        // Only a damaged record holds a time past what RFC 3339 can write (year 9999).
        .map_or_else(
            || "after 9999-12-31T23:59:59Z".to_owned(),
            |at| at.to_string(),
        )
}

/// `--since`: RFC 3339 (`2026-11-25T08:00:00Z`, `2026-11-25T09:00:00.5+01:00`) or Unix
/// seconds, as Unix milliseconds.
fn parse_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let invalid = || {
        format!(
            "`{text}` is not a time: use RFC 3339 such as 2026-11-25T08:00:00Z, or Unix seconds"
        )
    };
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .ok()
            .and_then(|seconds| seconds.checked_mul(1000))
            .ok_or_else(invalid);
    }
    // A time with its offset (`Z` or `+01:00`): jiff's RFC 3339 reading, which refuses one
    // without, so a local time is never taken for UTC.
    let at: jiff::Timestamp = text.parse().map_err(|_| invalid())?;
    u64::try_from(at.as_millisecond()).map_err(|_| format!("`{text}` is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use nextgen_events::inbox::HandlerFailure;

    fn args(line: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("inbox").chain(line.iter().copied()))
    }

    #[test]
    fn command_line_is_consistent() {
        Args::command().debug_assert();
        assert!(args(&["--sqlite", "x", "stats"]).is_ok());
        assert!(args(&["stats", "--sqlite", "x", "--json"]).is_ok_and(|a| a.json));
        assert!(args(&["--sqlite", "x", "replay"]).is_err());
        assert!(args(&["--sqlite", "x", "replay", "evt_1", "--dead"]).is_err());
        assert!(args(&["--sqlite", "x", "replay", "evt_1", "--since", "0"]).is_err());
        assert!(args(&["--sqlite", "x", "replay", "--dead", "--since", "0"]).is_ok());
        assert!(args(&["--sqlite", "x", "replay", "evt_1", "--rerun", "h"]).is_ok());
        assert!(args(&["--sqlite", "x", "replay", "--dead", "--rerun", "h"]).is_err());
        assert!(args(&["--sqlite", "x", "replay", "--rerun", "h"]).is_err());
        assert!(args(&["--sqlite", "x", "replay", "evt_1", "--rerun"]).is_err());
        assert!(args(&["--sqlite", "x", "list", "--limit", "0"]).is_err());
        assert!(args(&["--sqlite", "x", "list", "--state", "gone"]).is_err());
        let Ok(parsed) = args(&["--sqlite", "x", "list", "--state", "dead"]) else {
            panic!("list --state dead refused");
        };
        let Command::List(list) = parsed.command else {
            panic!("not list");
        };
        assert_eq!(
            (list.state, list.limit),
            (Some(InboxState::Dead), DEFAULT_LIMIT)
        );
    }

    #[test]
    fn backends() {
        let Ok(parsed) = args(&["stats"]) else {
            panic!("stats refused")
        };
        assert!(backend(&parsed).is_err_and(|f| f.status == 2));
        let Ok(parsed) = args(&["--redis", "redis://127.0.0.1/", "--prefix", "p", "stats"]) else {
            panic!("--redis refused")
        };
        assert!(matches!(
            backend(&parsed),
            Ok(BackendUrl::Redis { url, prefix: Some(prefix) })
                if url == "redis://127.0.0.1/" && prefix == "p"
        ));
        let Ok(parsed) = args(&["--inbox", "redis://127.0.0.1/?prefix=p", "stats"]) else {
            panic!("--inbox refused")
        };
        assert!(matches!(
            backend(&parsed),
            Ok(BackendUrl::Redis { url, prefix: Some(prefix) })
                if url == "redis://127.0.0.1/" && prefix == "p"
        ));
        let Ok(parsed) = args(&["--inbox", "ftp://h/x", "stats"]) else {
            panic!("--inbox refused")
        };
        assert!(backend(&parsed).is_err_and(|f| f.status == 2
            && f.message.contains("`ftp:`")
            && f.message.contains("redis://")));
        let Ok(parsed) = args(&["--inbox", "a.db", "--sqlite", "b.db", "stats"]) else {
            panic!("--inbox refused")
        };
        assert!(backend(&parsed).is_err_and(|f| f.status == 2));
        let Ok(parsed) = args(&["--sqlite", "x", "--prefix", "p", "stats"]) else {
            panic!("--prefix refused")
        };
        assert!(backend(&parsed).is_err());
        let Ok(parsed) = args(&["--redis", "redis://127.0.0.1/", "stats"]) else {
            panic!("--redis refused")
        };
        assert!(backend(&parsed).is_err_and(|f| f.status == 2 && f.message.contains("--prefix")));
    }

    #[test]
    fn postgres_backends() {
        let parsed = |line: &[&str]| match args(line) {
            Ok(parsed) => backend(&parsed),
            Err(error) => panic!("{line:?} refused: {error}"),
        };
        let postgres = |url: &str, schema: Option<&str>| BackendUrl::Postgres {
            url: url.to_owned(),
            schema: schema.map(str::to_owned),
        };
        // No schema: the opener's default (`nextgen`), as the app's.
        assert_eq!(
            parsed(&["--postgres", "postgres://app@db/payments", "stats"]).ok(),
            Some(postgres("postgres://app@db/payments", None))
        );
        assert_eq!(
            parsed(&[
                "stats",
                "--postgres",
                "postgresql://app@db/payments",
                "--schema",
                "billing",
                "--json"
            ])
            .ok(),
            Some(postgres("postgresql://app@db/payments", Some("billing")))
        );
        // sqlx's own parameters stay in the URL; a schema may be given in it instead.
        assert_eq!(
            parsed(&[
                "--postgres",
                "postgres://app@db/payments?sslmode=require&schema=billing",
                "list"
            ])
            .ok(),
            Some(postgres(
                "postgres://app@db/payments?sslmode=require",
                Some("billing")
            ))
        );
        assert_eq!(
            parsed(&[
                "--postgres",
                "postgres://app@db/payments?sslmode=require",
                "--schema",
                "billing",
                "list"
            ])
            .ok(),
            Some(postgres(
                "postgres://app@db/payments?sslmode=require",
                Some("billing")
            ))
        );
        assert_eq!(
            parsed(&[
                "--inbox",
                "postgres://app@db/payments?schema=billing",
                "show",
                "evt_1"
            ])
            .ok(),
            Some(postgres("postgres://app@db/payments", Some("billing")))
        );
        // Refused, as usage errors: the schema twice, a schema without --postgres, another
        // backend's URL, two inboxes.
        for (line, says) in [
            (
                &[
                    "--postgres",
                    "postgres://db/p?schema=a",
                    "--schema",
                    "b",
                    "stats",
                ][..],
                "named twice",
            ),
            (&["--schema", "billing", "stats"], "it goes with --postgres"),
            (
                &["--sqlite", "x", "--schema", "billing", "stats"],
                "it goes with --postgres",
            ),
            (
                &["--inbox", "postgres://db/p", "--schema", "billing", "stats"],
                "`?schema=S`",
            ),
            (
                &["--postgres", "redis://127.0.0.1/", "stats"],
                "--postgres takes a PostgreSQL URL",
            ),
            (
                &["--postgres", "webhooks.sqlite3", "stats"],
                "--postgres takes a PostgreSQL URL",
            ),
            (&["--postgres", " ", "stats"], "no backend URL"),
            (
                &["--postgres", "postgres://db/p", "--sqlite", "x", "stats"],
                "name the inbox once",
            ),
            (
                &["--postgres", "postgres://db/p", "--prefix", "p", "stats"],
                "it goes with --redis",
            ),
        ] {
            let failure = parsed(line).err();
            assert!(
                failure
                    .as_ref()
                    .is_some_and(|f| f.status == 2 && f.message.contains(says)),
                "{line:?}: {failure:?}"
            );
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_161_600_999), "2026-11-20T08:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_399_000), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn since_takes_rfc3339_or_unix_seconds() {
        assert_eq!(parse_time("2026-11-20T08:00:00Z"), Ok(1_795_161_600_000));
        assert_eq!(parse_time("2026-11-20t08:00:00.25z"), Ok(1_795_161_600_250));
        assert_eq!(
            parse_time("2026-11-20T09:30:00+01:30"),
            Ok(1_795_161_600_000)
        );
        assert_eq!(
            parse_time("2026-11-20T06:00:00-02:00"),
            Ok(1_795_161_600_000)
        );
        assert_eq!(parse_time("1795161600"), Ok(1_795_161_600_000));
        for wrong in [
            "",
            "yesterday",
            "2026-11-20",
            "2026-11-20T08:00:00",
            "2026-02-30T08:00:00Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20T08:00:00+1",
            "1969-12-31T23:59:59Z",
            "99999999999999999999",
        ] {
            assert!(parse_time(wrong).is_err(), "{wrong} accepted");
        }
    }

    fn record(state: InboxState, errors: &[&str]) -> InboxRecord {
        InboxRecord {
            event_id: "evt_1".into(),
            event_type: "charge.failed".into(),
            state,
            received_at_ms: 0,
            signed_at: 0,
            attempts: 3,
            due_at_ms: None,
            first_failed_at_ms: None,
            finished_at_ms: None,
            last_errors: errors
                .iter()
                .map(|error| HandlerFailure {
                    handler: "send_receipt".into(),
                    error: (*error).into(),
                })
                .collect(),
            reruns: Vec::new(),
            body: None,
        }
    }

    #[test]
    fn errors_are_shortened_in_the_middle() {
        let long = format!("{}{}", "é".repeat(50), "z".repeat(50));
        let mut record = record(InboxState::Dead, &[&long, "second"]);
        let short = short_error(&record);
        assert!(short.starts_with("send_receipt: éé"), "{short}");
        assert!(short.ends_with("zz (+1 more)"), "{short}");
        assert!(short.contains('…'), "{short}");
        assert_eq!(short.chars().count(), ERROR_WIDTH + " (+1 more)".len());
        record.state = InboxState::Handled;
        assert_eq!(short_error(&record), "");
    }

    #[test]
    fn a_payload_error_keeps_its_json_path() {
        let error = "the `refund.created` event's payload does not fit `Refund`: data.object.amount: expected i64, found a string";
        assert_eq!(
            shorten("(payload)", error, ERROR_WIDTH),
            "(payload): …data.object.amount: expected i64, found a string"
        );
        let nested = "the `charge.succeeded` event's payload does not fit `Charge`: data.object.refunds[0].amount: expected i64, found a string";
        let short = shorten("(payload)", nested, ERROR_WIDTH);
        assert!(short.chars().count() <= ERROR_WIDTH, "{short}");
        assert!(
            short.starts_with("(payload): …data.object.refunds[0].amount"),
            "{short}"
        );
        assert!(short.ends_with("found a string"), "{short}");
        // A cut falls between words.
        let words = format!(
            "could not book: {} answered 503",
            "the ledger API ".repeat(6)
        );
        let short = shorten("update_ledger", &words, ERROR_WIDTH);
        assert!(short.chars().count() <= ERROR_WIDTH, "{short}");
        assert!(
            short.starts_with("update_ledger: could not book: the"),
            "{short}"
        );
        assert!(short.ends_with(" answered 503"), "{short}");
        let (head, tail) = short.split_once('…').unwrap_or_default();
        let head = head.strip_prefix("update_ledger: ").unwrap_or_default();
        assert!(
            words.starts_with(head) && words[head.len()..].starts_with(' '),
            "{short}"
        );
        assert!(
            words.ends_with(tail) && words[..words.len() - tail.len()].ends_with(' '),
            "{short}"
        );
        // What fits is never cut, and a host name is no JSON path to cut to.
        assert_eq!(
            shorten("send_receipt", "smtp.example.com:587: refused", ERROR_WIDTH),
            "send_receipt: smtp.example.com:587: refused"
        );
        assert_eq!(
            json_path_start("smtp.example.com:587: connection refused"),
            None
        );
        assert_eq!(json_path_start("data.object: missing field `amount`"), None);
        assert_eq!(json_path_start("x: data.object: missing"), Some(3));
    }

    #[test]
    fn a_handler_name_longer_than_the_column_is_kept_whole() {
        let handler = "h".repeat(80);
        assert_eq!(shorten(&handler, "down", 60), format!("{handler}: down"));
    }

    #[test]
    fn unix_times_in_errors_read_as_times() {
        assert_eq!(
            readable_times("held by process 7 on db1, since Unix time 1796583893"),
            "held by process 7 on db1, since 2026-12-06T19:04:53Z"
        );
        assert_eq!(
            readable_times("Unix time 0 and Unix time 1795161600."),
            "1970-01-01T00:00:00Z and 2026-11-20T08:00:00Z."
        );
        assert_eq!(readable_times("no Unix time here"), "no Unix time here");
        assert_eq!(readable_times("Unix time "), "Unix time ");
        assert_eq!(
            readable_times("Unix time 99999999999999999999"),
            "Unix time 99999999999999999999"
        );
        assert_eq!(rfc3339(u64::MAX), "after 9999-12-31T23:59:59Z");
    }

    #[test]
    fn stats_say_how_long_the_oldest_pending_entry_waits() {
        let stats = InboxStats {
            pending: 3,
            dead: 1,
            oldest_pending_at_ms: Some(1_795_161_600_500),
            ..InboxStats::default()
        };
        assert_eq!(
            stats_text(&stats, 1_795_161_600 + 185),
            "pending   3\nretrying  0\nrunning   0\nhandled   0\ndead      1\n\
             oldest pending: 2026-11-20T08:00:00Z (3 min 5 s ago)\n"
        );
        let none_waits = stats_text(&InboxStats::default(), 1_795_161_600);
        assert!(!none_waits.contains("oldest"), "{none_waits}");
    }

    #[test]
    fn an_empty_listing_suggests_the_catalog_name() {
        let list = |state: Option<InboxState>, event_type: Option<&str>| ListArgs {
            state,
            event_type: event_type.map(str::to_owned),
            handler: None,
            after: None,
            limit: DEFAULT_LIMIT,
        };
        assert_eq!(no_entries(&list(None, None)), "no entries");
        assert_eq!(
            no_entries(&list(None, Some("refund.creatd"))),
            "no entries of type `refund.creatd`: did you mean `refund.created`?"
        );
        assert_eq!(
            no_entries(&list(Some(InboxState::Dead), Some("refund.created"))),
            "no dead entries of type `refund.created`"
        );
        assert_eq!(
            no_entries(&list(None, Some("payout.paid"))),
            "no entries of type `payout.paid`"
        );
        let narrowed = ListArgs {
            handler: Some("(payload)".to_owned()),
            after: Some("evt_1".to_owned()),
            ..list(Some(InboxState::Dead), Some("refund.creatd"))
        };
        assert_eq!(
            no_entries(&narrowed),
            "no dead entries of type `refund.creatd` failed by `(payload)` after `evt_1`: did you mean `refund.created`?"
        );
    }
}
