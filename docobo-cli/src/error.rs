//! [`Failure`]: how a command failed, and so its exit code.

/// How a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The arguments cannot work together (exit 2).
    Usage(String),
    /// Anything else (exit 1).
    Other(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Other(e.to_string())
    }
}
