//! The page's HTML, server-rendered with maud (which escapes every value it is given).

mod chart;
mod entry;
mod layout;
mod list;
mod overview;
mod rerun;
mod result;
mod text;

pub(crate) use entry::entry;
pub(crate) use layout::{CONTENT_SECURITY_POLICY, message};
pub(crate) use list::{Listing, list};
pub(crate) use overview::{Overview, overview};
pub(crate) use rerun::{confirm_rerun, rerun_result};
pub(crate) use result::{confirm_replay, confirm_replay_dead, replayed};
pub(crate) use text::parse_since;
