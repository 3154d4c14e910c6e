//! The driver–executor protocol over TCP: checksummed frames ([`frame`]),
//! versioned messages ([`message`]), the driver's [`ExecutorHub`] and the
//! executor's [`DriverClient`].

pub mod client;
pub mod frame;
pub mod hub;
pub mod message;

pub use client::{DriverClient, ExecutorHandler, Registration};
pub use hub::{DriverHandler, ExecutorHub};
pub use message::{ReceiverStatus, TaskOutcome, ToDriver, ToExecutor};
