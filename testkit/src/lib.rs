//! The process fixtures every crate's integration tests need, in one place (a dev-dependency
//! only; nothing here ships):
//!
//! * [`binaries`]: locate (and build when stale) a workspace binary from any crate's tests;
//! * [`ports`]: loopback ports never handed out twice in one test binary;
//! * [`process`]: a child process that dies with the test (PDEATHSIG) and is killed by PID
//!   when its guard drops, with its output in a log file;
//! * [`namesrv`]: a real `ringmq-namesrv` on an OS-chosen port, read from its boot line;
//! * [`wire`]: a blocking remoting client on the proto crate's codec;
//! * [`wait`]: bounded waits for conditions (never a fixed sleep standing in for one);
//! * [`executor`]: a small glommio executor for async client tests;
//! * [`record`]: a stored-record fixture with the fields tests do not care about filled in.

pub mod binaries;
pub mod executor;
pub mod namesrv;
pub mod ports;
pub mod process;
pub mod record;
pub mod wait;
pub mod wire;

pub use binaries::workspace_binary;
pub use executor::run;
pub use namesrv::NamesrvProcess;
pub use ports::{free_port, free_port_pair, start_on_free_port_pair};
pub use process::{die_with_this_process, ChildGuard};
pub use record::sample_record;
pub use wait::{wait_until, WAIT_LIMIT};
pub use wire::WireClient;
