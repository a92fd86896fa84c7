//! The store's errors, in its own vocabulary; diesel's are mapped once, here.

/// What can go wrong reading or writing the database. Never carries a secret: ciphertext
/// and links stay out of messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL or pool settings are not usable.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// No such row for this caller (a row of another organization or connection is
    /// reported the same way, so ids cannot be probed).
    #[error("{entity} {id} not found")]
    NotFound {
        /// What was looked up (`connection`, `sync run`...).
        entity: &'static str,
        /// The id asked for.
        id: String,
    },
    /// A unique constraint or a compare-and-swap failed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The transaction lost a race with another one (a deadlock or a serialization
    /// failure) and was rolled back whole; running it again is safe.
    #[error("the database rolled back a transaction that raced another; retry it: {0}")]
    Contention(String),
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(String),
    /// Could not connect, or the pool timed out.
    #[error("could not reach the database: {0}")]
    Unavailable(String),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A page request does not fit the listing (e.g. a search's cursor without the
    /// search).
    #[error(transparent)]
    Page(#[from] crate::PageError),
    /// A stored value could not be decoded (e.g. a report that is not JSON).
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match e {
            D::NotFound => Self::NotFound {
                entity: "row",
                id: String::new(),
            },
            D::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict(info.message().to_owned())
            }
            D::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
                Self::Contention(info.message().to_owned())
            }
            // PostgreSQL's 40P01, which diesel does not name.
            D::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message() == "deadlock detected" =>
            {
                Self::Contention(info.message().to_owned())
            }
            D::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            other => Self::Database(other.to_string()),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for Error {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl Error {
    /// Maps a missing row to [`Error::NotFound`] naming `entity` and `id`.
    pub(crate) fn or_not_found(e: diesel::result::Error, entity: &'static str, id: &str) -> Self {
        match e {
            diesel::result::Error::NotFound => Self::NotFound {
                entity,
                id: id.to_owned(),
            },
            other => other.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error as D};

    #[test]
    fn races_are_contention_and_other_failures_are_not() {
        let db = |kind, message: &str| D::DatabaseError(kind, Box::new(message.to_owned()));
        assert!(matches!(
            Error::from(db(DatabaseErrorKind::Unknown, "deadlock detected")),
            Error::Contention(_)
        ));
        assert!(matches!(
            Error::from(db(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access"
            )),
            Error::Contention(_)
        ));
        assert!(matches!(
            Error::from(db(DatabaseErrorKind::Unknown, "syntax error")),
            Error::Database(_)
        ));
    }
}
