//! One module per page.

mod admin;
mod dashboard;
mod login;
mod me;

pub use admin::{AdminUsersPage, ConfirmInvalidateAll, ConfirmPurge};
pub use dashboard::DashboardPage;
pub use login::LoginPage;
pub use me::MePage;
