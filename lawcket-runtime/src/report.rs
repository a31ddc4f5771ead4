//! What a mass publish did.

use crate::error::Error;

/// The outcome of a mass publish: every matched connection is counted once, as
/// delivered, released (API Gateway answered 410 Gone) or failed.
///
/// ```
/// # async fn demo(publish: lawcket::Publish) -> Result<(), lawcket::Error> {
/// let report = publish.matching("channel", "#general").send("hi").await?;
/// println!("{} delivered, {} released", report.delivered, report.released.len());
/// for failure in &report.failed {
///     eprintln!("{}: {}", failure.connection_id, failure.error);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Report {
    /// Posts API Gateway accepted.
    pub delivered: usize,
    /// Connections that answered 410 Gone; they were removed from the table.
    pub released: Vec<String>,
    /// Posts that failed for another reason (after retries); those connections
    /// are kept.
    pub failed: Vec<Failure>,
}

/// A post that failed, and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure {
    /// The connection the post was for.
    pub connection_id: String,
    /// What went wrong.
    pub error: Error,
}

impl Report {
    /// How many connections the publish matched.
    pub fn matched(&self) -> usize {
        self.delivered + self.released.len() + self.failed.len()
    }

    /// Whether every matched connection was delivered to or released.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}
