//! The command line (docs/architecture.md, running it).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use grantry_core::model::{Role, TokenFormat, UserKind};

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
    /// Run the admin command through the admin API of the server at this URL instead of
    /// opening the database (needs --token).
    #[arg(long, global = true, env = "GRANTRY_SERVER")]
    pub server: Option<String>,
    /// The admin API credential for --server: an access token or API key with admin:read /
    /// admin:write, or the operator token for `org create`.
    #[arg(long, global = true, env = "GRANTRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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
    /// Make a new platform operator token (for creating organizations through the admin
    /// API): prints the token once and the setting that makes the server accept it.
    OperatorToken,
    #[command(flatten)]
    Admin(AdminCommand),
}

impl Command {
    /// The `--listen` flag, which only `serve` has.
    pub fn listen(&self) -> Option<&String> {
        match self {
            Command::Serve { listen } => listen.as_ref(),
            Command::OperatorToken | Command::Admin(_) => None,
        }
    }
}

/// The commands that act on the store once and report what they did.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
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
    Audit(AuditArgs),
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[arg(long)]
    pub org: String,
    /// RFC 3339 time (2026-11-23T19:00:00Z) or a duration ago (1h, 30m).
    #[arg(long)]
    pub since: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// Create an organization and its principal org admin.
    Create(OrgCreateArgs),
}

#[derive(Args, Debug)]
pub struct OrgCreateArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub admin: String,
    #[arg(long)]
    pub email: String,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum TokenFormatArg {
    Opaque,
    Jwt,
}

impl From<TokenFormatArg> for TokenFormat {
    fn from(f: TokenFormatArg) -> Self {
        match f {
            TokenFormatArg::Opaque => TokenFormat::Opaque,
            TokenFormatArg::Jwt => TokenFormat::Jwt,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum KindArg {
    Ui,
    Api,
}

impl From<KindArg> for UserKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Ui => UserKind::Ui,
            KindArg::Api => UserKind::Api,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
#[value(rename_all = "snake_case")]
pub enum RoleArg {
    OrgAdmin,
    User,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::OrgAdmin => Role::OrgAdmin,
            RoleArg::User => Role::User,
        }
    }
}

#[derive(Args, Debug)]
pub struct UserGrantArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub username: String,
    /// A grant name: lists:read, lists:write, contacts:read, contacts:write, events:write,
    /// admin:read, admin:write.
    #[arg(long)]
    pub grant: String,
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a UI user (console) or an API user (secret keys).
    Add(UserAddArgs),
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
pub struct UserAddArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub email: String,
    #[arg(long, value_enum)]
    pub kind: KindArg,
    #[arg(long, value_enum, default_value = "user")]
    pub role: RoleArg,
    /// A grant to give; repeat for several.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// Read the UI user's password from standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
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
    Delete(KeyDeleteArgs),
}

#[derive(Args, Debug)]
pub struct KeyDeleteArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub username: String,
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub slot: u8,
}

#[derive(Subcommand, Debug)]
pub enum AppCmd {
    /// Register an application; its client secret is shown once.
    Add(AppAddArgs),
    /// Give an application a new client secret; the old one keeps working for --overlap.
    RotateSecret(RotateSecretArgs),
}

#[derive(Args, Debug)]
pub struct AppAddArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub name: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// An allowed redirect URI; repeat for several.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// A scope the application may ask for; repeat for several [default: all].
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// A public client (no secret; PKCE required).
    #[arg(long)]
    pub public: bool,
    /// Return a new refresh token on every refresh; reuse of an old one revokes them all.
    #[arg(long)]
    pub rotate_refresh_tokens: bool,
    /// Access tokens: opaque strings, or signed JWTs (RFC 9068) verifiable with /oauth/jwks.
    #[arg(long, value_enum, default_value = "opaque")]
    pub token_format: TokenFormatArg,
}

#[derive(Args, Debug)]
pub struct RotateSecretArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub client_id: String,
    /// How long the old secret keeps working (e.g. 1h, 30m, 0s).
    #[arg(long, default_value = "24h")]
    pub overlap: String,
}

#[derive(Subcommand, Debug)]
pub enum AccessCmd {
    /// Add account access; the refresh token is shown once and mailed to the admins.
    Add(AccessAddArgs),
    /// List the organization's account access (added by admins or given by consent).
    List(OrgRef),
    /// Delete account access: its refresh token and access tokens stop working at once.
    Delete(AccessRef),
}

#[derive(Args, Debug)]
pub struct AccessAddArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub client_id: String,
    #[arg(long)]
    pub username: String,
    /// The org admin adding it.
    #[arg(long)]
    pub by: String,
}

#[derive(Args, Debug)]
pub struct OrgRef {
    #[arg(long)]
    pub org: String,
}

#[derive(Args, Debug)]
pub struct AccessRef {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub client_id: String,
    #[arg(long)]
    pub username: String,
}
