//! `BackendUrl`: a backend named by a URL, parsed once, and why one could not be opened.

use std::fmt;
use std::path::PathBuf;

use crate::idempotency::StoreError;

/// A backend named by a URL (see [the module docs](super)).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendUrl {
    /// A SQLite file.
    Sqlite {
        /// The file's path, as given.
        path: PathBuf,
        /// How its commits reach the disk (`?synchronous=normal`; full by default).
        durability: SqliteDurability,
    },
    /// A Redis server, and the prefix of the keys the store or inbox uses there.
    Redis {
        /// The server's URL, without the `prefix` parameter.
        url: String,
        /// The key prefix (`?prefix=P`): every replica of an app must use the same one.
        prefix: Option<String>,
    },
    /// A PostgreSQL database, and the schema the store or inbox keeps its tables in.
    Postgres {
        /// The database's URL, without the `schema` parameter (sqlx's own, such as `sslmode`,
        /// stay).
        url: String,
        /// The schema (`?schema=S`; `nextgen` when not given): every replica of an app must
        /// use the same one.
        schema: Option<String>,
    },
}

/// How a SQLite file's commits reach the disk: `synchronous=FULL` (the default: an
/// acknowledged delivery survives a power cut) or `NORMAL` (`sqlite:PATH?synchronous=normal`:
/// faster; a power cut, not a crash, may lose the last commits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqliteDurability {
    /// `synchronous=FULL`.
    #[default]
    Full,
    /// `synchronous=NORMAL`.
    Normal,
}

/// The schemes [`BackendUrl::parse`] knows, as its refusal lists them.
const KNOWN: &str = "`sqlite:PATH` (or a file path), `redis://HOST[:PORT][/DB]?prefix=P` (or `rediss://`), `postgres://USER@HOST/DB[?schema=S]`";

impl BackendUrl {
    /// Reads `text`: `sqlite:PATH`, `sqlite://PATH`, a plain file path, `redis://...` or
    /// `rediss://...` with an optional `prefix` parameter, `postgres://...` or
    /// `postgresql://...` with an optional `schema` parameter.
    ///
    /// # Errors
    ///
    /// [`OpenError::UnknownScheme`] for a URL of another scheme (listing the known ones),
    /// [`OpenError::Empty`] for an empty one.
    ///
    /// ```
    /// use nextgen_events::backend::{BackendUrl, OpenError};
    ///
    /// let redis = BackendUrl::parse("redis://:secret@127.0.0.1:6379/0?prefix=payments")?;
    /// assert_eq!(
    ///     redis,
    ///     BackendUrl::Redis {
    ///         url: "redis://:secret@127.0.0.1:6379/0".to_owned(),
    ///         prefix: Some("payments".to_owned()),
    ///     }
    /// );
    /// // Shown without its password.
    /// assert_eq!(redis.to_string(), "redis://:***@127.0.0.1:6379/0?prefix=payments");
    /// assert!(matches!(BackendUrl::parse("webhooks.sqlite3")?, BackendUrl::Sqlite { .. }));
    /// let refused = BackendUrl::parse("mysql://db/payments").unwrap_err();
    /// assert!(refused.to_string().contains("redis://"), "{refused}");
    /// # Ok::<(), OpenError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, OpenError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(OpenError::Empty);
        }
        let Some((scheme, rest)) = scheme_of(text) else {
            return Ok(BackendUrl::sqlite(text));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                let rest = rest.strip_prefix("//").unwrap_or(rest);
                let (path, durability) = match rest.rsplit_once('?') {
                    Some((path, query)) => (path, sqlite_durability(text, query)?),
                    None => (rest, SqliteDurability::Full),
                };
                if path.is_empty() {
                    return Err(OpenError::Empty);
                }
                Ok(BackendUrl::Sqlite {
                    path: path.into(),
                    durability,
                })
            }
            "redis" | "rediss" => {
                let (url, prefix) = split_parameter(text, "prefix");
                Ok(BackendUrl::Redis { url, prefix })
            }
            "postgres" | "postgresql" => {
                let (url, schema) = split_parameter(text, "schema");
                Ok(BackendUrl::Postgres { url, schema })
            }
            _ => Err(OpenError::UnknownScheme {
                scheme: scheme.to_owned(),
            }),
        }
    }

    /// A SQLite file at `path`, committing with `synchronous=FULL`.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        BackendUrl::Sqlite {
            path: path.into(),
            durability: SqliteDurability::Full,
        }
    }

    /// The backend's name, as errors say it.
    pub fn backend(&self) -> &'static str {
        match self {
            BackendUrl::Sqlite { .. } => "SQLite",
            BackendUrl::Redis { .. } => "Redis",
            BackendUrl::Postgres { .. } => "PostgreSQL",
        }
    }
}

/// The durability a `sqlite:` URL's query asks for: `synchronous=full` or `synchronous=normal`,
/// nothing else.
fn sqlite_durability(url: &str, query: &str) -> Result<SqliteDurability, OpenError> {
    match query.to_ascii_lowercase().as_str() {
        "synchronous=full" => Ok(SqliteDurability::Full),
        "synchronous=normal" => Ok(SqliteDurability::Normal),
        _ => Err(OpenError::BadParameter {
            url: url.to_owned(),
            parameter: query.to_owned(),
            known: "`synchronous=full` (the default) or `synchronous=normal`",
        }),
    }
}

/// `scheme:` and what follows, when `text` starts with a scheme; `None` for a path (a Windows
/// drive letter is a path too).
fn scheme_of(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once(':')?;
    let is_scheme = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then_some((scheme, rest))
}

/// The URL without its query parameter `name` (`prefix`, `schema`), and that parameter's value.
fn split_parameter(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((key, given)) if key == name => {
                value = Some(given.to_owned()).filter(|given| !given.is_empty());
                false
            }
            _ => !pair.is_empty(),
        })
        .collect();
    let url = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    (url, value)
}

/// `url` with the password of its authority, if any, replaced by `***`: after `user:`, or the
/// whole user part when it has no `:` (a token may be all there is).
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => format!("{scheme}://***@{host}{path}"),
        },
        None => url.to_owned(),
    }
}

/// A PostgreSQL URL without its password, in the authority (`user:password@`) or a
/// `password=` parameter; a user name alone is not a secret there and stays.
fn redacted_postgres(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.split_once("://").map_or(base, |(_, rest)| rest);
    let base = match authority.rsplit_once('@') {
        Some((credentials, _)) if credentials.contains(':') => redacted(base),
        _ => base.to_owned(),
    };
    let Some(query) = query else {
        return base;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

impl fmt::Display for BackendUrl {
    /// The URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendUrl::Sqlite { path, durability } => {
                write!(f, "sqlite:{}", path.display())?;
                match durability {
                    SqliteDurability::Full => Ok(()),
                    SqliteDurability::Normal => f.write_str("?synchronous=normal"),
                }
            }
            BackendUrl::Redis { url, prefix } => {
                f.write_str(&redacted(url))?;
                match prefix {
                    Some(prefix) if url.contains('?') => write!(f, "&prefix={prefix}"),
                    Some(prefix) => write!(f, "?prefix={prefix}"),
                    None => Ok(()),
                }
            }
            BackendUrl::Postgres { url, schema } => {
                f.write_str(&redacted_postgres(url))?;
                match schema {
                    Some(schema) if url.contains('?') => write!(f, "&schema={schema}"),
                    Some(schema) => write!(f, "?schema={schema}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl fmt::Debug for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackendUrl({self})")
    }
}

/// Why a backend could not be opened from its URL. Each message says what to write instead;
/// none shows a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL is empty.
    #[error("no backend URL was given: name one, {KNOWN}")]
    Empty,
    /// The URL's scheme names no backend of this library.
    #[error("`{scheme}:` is not a backend nextgen-events opens: use {KNOWN}")]
    UnknownScheme {
        /// The scheme given.
        scheme: String,
    },
    /// A backend this build of the library was compiled without.
    #[error(
        "{backend} URLs need the cargo feature `{feature}` of nextgen-events, which this build does not have: enable it (`nextgen-events = {{ version = \"0.1\", features = [\"{feature}\"] }}`)"
    )]
    NotBuilt {
        /// The backend, e.g. `Redis`.
        backend: &'static str,
        /// The cargo feature that brings it.
        feature: &'static str,
    },
    /// A URL parameter this backend does not take.
    #[error(
        "`{url}` has the parameter `{parameter}`, which is not one of this backend's: use {known}"
    )]
    BadParameter {
        /// The URL, without its password.
        url: String,
        /// The parameter as given.
        parameter: String,
        /// The parameters it takes.
        known: &'static str,
    },
    /// A Redis URL without the prefix of the keys to use.
    #[error(
        "`{url}` names no key prefix: add `?prefix=P` with the prefix the app uses (every replica the same)"
    )]
    MissingPrefix {
        /// The URL, without its password.
        url: String,
    },
    /// A tool asked for an inbox that is not there (a mistyped path or prefix is not an empty
    /// inbox).
    #[error("no inbox at `{url}`: {why}")]
    NoInbox {
        /// The URL, without its password.
        url: String,
        /// What was looked for.
        why: String,
    },
    /// The backend was reached but could not be opened.
    #[error("could not open `{url}`: {source}")]
    Store {
        /// The URL, without its password.
        url: String,
        /// The backend's error.
        source: StoreError,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_form_of_each_backend_is_read() {
        let sqlite = BackendUrl::sqlite;
        assert_eq!(BackendUrl::parse("sqlite:a.db").unwrap(), sqlite("a.db"));
        assert_eq!(
            BackendUrl::parse("sqlite:///var/a.db").unwrap(),
            sqlite("/var/a.db")
        );
        assert_eq!(BackendUrl::parse("./a.db").unwrap(), sqlite("./a.db"));
        assert_eq!(BackendUrl::parse("C:\\a.db").unwrap(), sqlite("C:\\a.db"));
        assert_eq!(
            BackendUrl::parse("rediss://h:1/2?protocol=resp3&prefix=p").unwrap(),
            BackendUrl::Redis {
                url: "rediss://h:1/2?protocol=resp3".to_owned(),
                prefix: Some("p".to_owned())
            }
        );
        assert_eq!(
            BackendUrl::parse("redis://h").unwrap(),
            BackendUrl::Redis {
                url: "redis://h".to_owned(),
                prefix: None
            }
        );
        assert!(matches!(
            BackendUrl::parse("postgresql://u:p@h/db").unwrap(),
            BackendUrl::Postgres { schema: None, .. }
        ));
        let postgres =
            BackendUrl::parse("postgres://u:pw@h/db?sslmode=require&schema=payments").unwrap();
        assert_eq!(
            postgres,
            BackendUrl::Postgres {
                url: "postgres://u:pw@h/db?sslmode=require".to_owned(),
                schema: Some("payments".to_owned()),
            }
        );
        assert_eq!(
            postgres.to_string(),
            "postgres://u:***@h/db?sslmode=require&schema=payments"
        );
        assert_eq!(
            BackendUrl::parse("sqlite:a.db?synchronous=normal").unwrap(),
            BackendUrl::Sqlite {
                path: "a.db".into(),
                durability: SqliteDurability::Normal
            }
        );
        assert_eq!(
            BackendUrl::parse("sqlite:a.db?synchronous=normal")
                .unwrap()
                .to_string(),
            "sqlite:a.db?synchronous=normal"
        );
        let refused = BackendUrl::parse("sqlite:a.db?mode=ro").unwrap_err();
        assert!(
            refused.to_string().contains("synchronous=normal"),
            "{refused}"
        );
        assert_eq!(BackendUrl::parse("  ").unwrap_err(), OpenError::Empty);
        assert_eq!(BackendUrl::parse("sqlite:").unwrap_err(), OpenError::Empty);
    }

    #[test]
    fn an_unknown_scheme_is_refused_with_the_known_ones() {
        let refused = BackendUrl::parse("ftp://h/x").unwrap_err();
        assert_eq!(
            refused,
            OpenError::UnknownScheme {
                scheme: "ftp".to_owned()
            }
        );
        let message = refused.to_string();
        for known in ["sqlite:PATH", "redis://", "postgres://"] {
            assert!(message.contains(known), "{message}");
        }
    }

    #[test]
    fn a_postgres_user_name_is_shown_it_is_no_secret() {
        assert_eq!(
            BackendUrl::parse("postgres://app@db:5432/payments?schema=s")
                .unwrap()
                .to_string(),
            "postgres://app@db:5432/payments?schema=s"
        );
    }

    #[test]
    fn no_password_is_shown() {
        for (url, shown) in [
            (
                "redis://:pw@h:6379/0?prefix=p",
                "redis://:***@h:6379/0?prefix=p",
            ),
            ("redis://user:pw@h", "redis://user:***@h"),
            ("redis://h?db=1&prefix=p", "redis://h?db=1&prefix=p"),
            ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u@h/db?password=pw&sslmode=require",
                "postgres://u@h/db?password=***&sslmode=require",
            ),
            ("redis://pw@h/", "redis://***@h/"),
        ] {
            let parsed = BackendUrl::parse(url).unwrap();
            assert_eq!(parsed.to_string(), shown);
            assert!(!format!("{parsed:?}").contains("pw"));
        }
    }
}
