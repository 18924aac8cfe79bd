//! The command line (docs/architecture.md, running it).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "grantry",
    version,
    about = "API-access server: OAuth authorization server, API gate and admin console"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "GRANTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data folder for the embedded SQLite database and the mail outbox [default: ./grantry-data].
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    /// Database URL (sqlite://PATH or postgres://...); overrides database.url.
    #[arg(long, global = true)]
    pub database: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on [default: server.listen, 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<String>,
    },
    /// Organizations.
    #[command(subcommand)]
    Org(OrgCmd),
    /// UI users and API users.
    #[command(subcommand)]
    User(UserCmd),
    /// Applications (OAuth clients).
    #[command(subcommand)]
    App(AppCmd),
    /// Account access: bind an application to a UI user with a refresh token.
    #[command(subcommand)]
    Access(AccessCmd),
    /// API users' secret keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Show an organization's audit log.
    Audit {
        #[arg(long)]
        org: String,
        /// RFC 3339 time (2026-11-23T19:00:00Z) or a duration ago (1h, 30m).
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// Create an organization and its principal org admin.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum TokenFormatArg {
    Opaque,
    Jwt,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum KindArg {
    Ui,
    Api,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
#[value(rename_all = "snake_case")]
pub enum RoleArg {
    OrgAdmin,
    User,
}

#[derive(Args, Debug)]
pub struct UserGrantArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub username: String,
    /// A grant name: lists:read, lists:write, contacts:read, contacts:write, events:write.
    #[arg(long)]
    pub grant: String,
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a UI user (console) or an API user (secret keys).
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_enum)]
        kind: KindArg,
        #[arg(long, value_enum, default_value = "user")]
        role: RoleArg,
        /// A grant to give; repeat for several.
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Read the UI user's password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Give a user a grant.
    Grant(UserGrantArgs),
    /// Take a grant away from a user.
    Revoke(UserGrantArgs),
    /// Disable a user: its keys, tokens and account accesses stop at once.
    Disable(UserRef),
    /// Enable a disabled user again.
    Enable(UserRef),
    /// Delete a user with its keys, account accesses and tokens.
    Delete(UserRef),
}

#[derive(Args, Debug)]
pub struct UserRef {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub username: String,
}

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Generate a secret key in the API user's free slot; it is shown once.
    Generate(UserRef),
    /// Delete the key in a slot; it keeps working for api_keys.delete_grace.
    Delete {
        #[arg(long)]
        org: String,
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
        slot: u8,
    },
}

#[derive(Subcommand, Debug)]
pub enum AppCmd {
    /// Register an application; its client secret is shown once.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// An allowed redirect URI; repeat for several.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A scope the application may ask for; repeat for several [default: all].
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A public client (no secret; PKCE required).
        #[arg(long)]
        public: bool,
        /// Return a new refresh token on every refresh; reuse of an old one revokes them all.
        #[arg(long)]
        rotate_refresh_tokens: bool,
        /// Access tokens: opaque strings, or signed JWTs (RFC 9068) verifiable with /oauth/jwks.
        #[arg(long, value_enum, default_value = "opaque")]
        token_format: TokenFormatArg,
    },
    /// Give an application a new client secret; the old one keeps working for --overlap.
    RotateSecret {
        #[arg(long)]
        org: String,
        #[arg(long)]
        client_id: String,
        /// How long the old secret keeps working (e.g. 1h, 30m, 0s).
        #[arg(long, default_value = "24h")]
        overlap: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccessCmd {
    /// Add account access; the refresh token is shown once and mailed to the admins.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        username: String,
        /// The org admin adding it.
        #[arg(long)]
        by: String,
    },
    /// List the organization's account access (added by admins or given by consent).
    List {
        #[arg(long)]
        org: String,
    },
    /// Delete account access: its refresh token and access tokens stop working at once.
    Delete {
        #[arg(long)]
        org: String,
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        username: String,
    },
}
