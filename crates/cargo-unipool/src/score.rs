//! The weights of a finding (documented in docs/audit.md): what it creates,
//! then where it sits. A file's score is the sum of its findings'.

use crate::scan::Context;

/// A client or a connection created per call.
pub const CLIENT: u32 = 3;
/// A whole pool built per call: many connections and a reaper each time.
pub const POOL: u32 = 5;
/// Inside a request handler: once per request, the hottest path a service has.
pub const HANDLER: u32 = 4;
/// Inside a loop: once per item.
pub const LOOP: u32 = 3;
/// Inside async code: the usual home of services that should share one.
pub const ASYNC: u32 = 1;

/// The score of one finding.
pub fn of(is_pool: bool, c: &Context) -> u32 {
    let base = if is_pool { POOL } else { CLIENT };
    base + if c.handler.is_some() { HANDLER } else { 0 }
        + if c.in_loop { LOOP } else { 0 }
        + if c.in_async { ASYNC } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_add_up() {
        let mut c = Context::default();
        assert_eq!(of(false, &c), 3);
        assert_eq!(of(true, &c), 5);
        c.in_loop = true;
        c.in_async = true;
        c.handler = Some("named `handle`".into());
        assert_eq!(of(false, &c), 11);
        assert_eq!(of(true, &c), 13);
    }
}
