//! The reliability scenarios side by side: pool-sql, bb8-postgres and
//! deadpool-postgres, each with the same settings through its own knobs,
//! against real PostgreSQL servers — stopped, gone silent, cut under load,
//! hit by a spike on slow connects, and by a cancellation storm. Each test
//! prints what every pool did (docs/reliability.md quotes the figures); only
//! pool-sql's contract is asserted — the peers' behaviour is theirs to choose.

mod blackhole;
mod cut;
mod down;
mod spike;
mod storm;
mod support;
