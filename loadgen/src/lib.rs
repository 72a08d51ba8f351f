//! The ringmq load generator.
