//! Handlers shared by the end-to-end tests.
