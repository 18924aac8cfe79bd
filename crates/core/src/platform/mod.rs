//! The platform's own APIs behind the gate (docs/architecture.md, protected APIs): the data they share (lists and
//! contacts), the Event API, and the XML API. Every operation takes the caller's
//! [`crate::gate::Principal`], checks its grant first, and acts only inside its org.

pub mod data;
pub mod events;
pub mod xmlapi;
