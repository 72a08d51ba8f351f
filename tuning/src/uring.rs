//! Which io_uring operations this kernel supports, probed with `IORING_REGISTER_PROBE` through
//! the io-uring crate. The list is the one glommio 0.9.0 itself requires at executor start
//! (`GLOMMIO_URING_OPS` in its `sys/uring.rs`) plus the cancel it issues: if one is missing the
//! broker's shards cannot start.

use io_uring::{opcode, IoUring, Probe};
use serde::Serialize;

/// The io_uring operations the broker (through glommio) uses, by name and opcode.
pub const BROKER_URING_OPS: &[(&str, u8)] = &[
    ("NOP", opcode::Nop::CODE),
    ("READV", opcode::Readv::CODE),
    ("WRITEV", opcode::Writev::CODE),
    ("FSYNC", opcode::Fsync::CODE),
    ("READ_FIXED", opcode::ReadFixed::CODE),
    ("WRITE_FIXED", opcode::WriteFixed::CODE),
    ("POLL_ADD", opcode::PollAdd::CODE),
    ("POLL_REMOVE", opcode::PollRemove::CODE),
    ("SENDMSG", opcode::SendMsg::CODE),
    ("RECVMSG", opcode::RecvMsg::CODE),
    ("TIMEOUT", opcode::Timeout::CODE),
    ("TIMEOUT_REMOVE", opcode::TimeoutRemove::CODE),
    ("ACCEPT", opcode::Accept::CODE),
    ("ASYNC_CANCEL", opcode::AsyncCancel::CODE),
    ("LINK_TIMEOUT", opcode::LinkTimeout::CODE),
    ("CONNECT", opcode::Connect::CODE),
    ("FALLOCATE", opcode::Fallocate::CODE),
    ("OPENAT", opcode::OpenAt::CODE),
    ("CLOSE", opcode::Close::CODE),
    ("STATX", opcode::Statx::CODE),
    ("READ", opcode::Read::CODE),
    ("WRITE", opcode::Write::CODE),
    ("SEND", opcode::Send::CODE),
    ("RECV", opcode::Recv::CODE),
];

/// What the io_uring probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UringSupport {
    /// A ring could be created and probed; `missing` lists required operations it lacks.
    Probed {
        supported: Vec<String>,
        missing: Vec<String>,
    },
    /// No ring could be created (kernel without io_uring, disabled by sysctl, seccomp, or a
    /// memlock limit too small for even a two-entry ring); `error` is the OS error.
    Unavailable { error: String },
}

impl UringSupport {
    /// Probes the running kernel. Costs one two-entry ring, created and dropped.
    pub fn probe_kernel() -> Self {
        let ring = match IoUring::new(2) {
            Ok(ring) => ring,
            Err(e) => {
                return Self::Unavailable {
                    error: e.to_string(),
                }
            }
        };
        let mut probe = Probe::new();
        if let Err(e) = ring.submitter().register_probe(&mut probe) {
            return Self::Unavailable {
                error: format!("IORING_REGISTER_PROBE failed: {e}"),
            };
        }
        Self::from_supported(|code| probe.is_supported(code))
    }

    /// Builds the result from a predicate over opcodes (the kernel's probe, or a test's table).
    pub fn from_supported(is_supported: impl Fn(u8) -> bool) -> Self {
        let (mut supported, mut missing) = (Vec::new(), Vec::new());
        for (name, code) in BROKER_URING_OPS {
            if is_supported(*code) {
                supported.push(name.to_string());
            } else {
                missing.push(name.to_string());
            }
        }
        Self::Probed { supported, missing }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernel_has_io_uring_with_every_broker_op() {
        // The machines the project runs on (kernel >= 5.8) support all of them; a kernel that
        // does not is exactly what the check must report, so this also guards the op table.
        match UringSupport::probe_kernel() {
            UringSupport::Probed { supported, missing } => {
                assert!(missing.is_empty(), "missing ops: {missing:?}");
                assert_eq!(supported.len(), BROKER_URING_OPS.len());
            }
            UringSupport::Unavailable { error } => panic!("io_uring unavailable: {error}"),
        }
    }

    #[test]
    fn missing_ops_are_named() {
        let support = UringSupport::from_supported(|code| code != opcode::Fallocate::CODE);
        let UringSupport::Probed { missing, .. } = support else {
            panic!("expected probed");
        };
        assert_eq!(missing, vec!["FALLOCATE".to_string()]);
    }
}
