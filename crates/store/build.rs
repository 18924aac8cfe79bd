//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files of
//! `migrations/` at compile time but only watches the ones it already knows.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
