//! `ErrorChain`: an error and its sources on one line, for `Display`s that must
//! name the cause a person acts on.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its sources, joined by `": "`. A
/// source whose text the line already holds is skipped, so an error that
/// prints its own source is not repeated.
///
/// Upstream errors often keep the useful part one level down: tokio-postgres
/// prints `db error` and keeps the server's message in its source, reqwest
/// prints `error sending request` and keeps `Connection refused` three levels
/// down.
///
/// ```
/// use pool_core::util::ErrorChain;
/// let io = std::io::Error::other("connection refused");
/// let outer = std::io::Error::new(std::io::ErrorKind::Other, io);
/// assert_eq!(ErrorChain(&outer).to_string(), "connection refused");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut next = self.0.source();
        while let Some(e) = next {
            let text = e.to_string();
            if !text.is_empty() && !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            next = e.source();
        }
        f.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorChain;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn every_source_once() {
        let e = Outer(Middle(std::io::Error::other("refused")));
        assert_eq!(ErrorChain(&e).to_string(), "outer: middle: refused");
    }
}
