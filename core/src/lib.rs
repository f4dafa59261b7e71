//! The generic BOOT loop.
