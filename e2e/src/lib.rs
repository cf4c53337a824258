//! The real-API test harness.
