//! The guide: how to receive NextGen webhooks with this crate, one chapter a module. The
//! chapters are Markdown files in `docs/`, so every code block in them is a doctest.

#[doc = include_str!("../docs/handlers.md")]
pub mod handlers {}

#[doc = include_str!("../docs/catalog.md")]
pub mod catalog {}

#[doc = include_str!("../docs/configuration.md")]
pub mod configuration {}

#[doc = include_str!("../docs/answers.md")]
pub mod answers {}

#[doc = include_str!("../docs/own_route.md")]
pub mod own_route {}

#[doc = include_str!("../docs/inbox.md")]
pub mod inbox {}

#[doc = include_str!("../docs/stores.md")]
pub mod stores {}

#[doc = include_str!("../docs/exactly_once.md")]
pub mod exactly_once {}

#[doc = include_str!("../docs/out_of_order.md")]
pub mod out_of_order {}

#[doc = include_str!("../docs/testing.md")]
pub mod testing {}

#[doc = include_str!("../docs/metrics.md")]
pub mod metrics {}

#[doc = include_str!("../docs/security.md")]
pub mod security {}
