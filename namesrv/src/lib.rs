//! The ringmq name server.
