//! Mail that grantry sends, composed here and delivered by a [`Mailer`] (SMTP or the outbox
//! folder, chosen by the binary).

use async_trait::async_trait;

/// One message to send.
#[derive(Clone)]
pub struct Message {
    /// `(display name, address)` pairs.
    pub to: Vec<(String, String)>,
    pub subject: String,
    pub body: String,
}

impl std::fmt::Debug for Message {
    // The body can carry a credential: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Delivers messages.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Delivers `msg`; the error says what went wrong and never contains the body.
    async fn send(&self, msg: Message) -> Result<(), String>;
}

/// The details of a new account access, for its notification.
pub struct AccountAccessNotice<'a> {
    pub org: &'a str,
    pub application: &'a str,
    pub client_id: &'a str,
    pub username: &'a str,
    pub created_by: &'a str,
    pub refresh_token: &'a str,
    pub token_url: &'a str,
}

/// The message that carries a new refresh token to the admin who created the account access
/// and to the principal org admin.
pub fn account_access_created(n: &AccountAccessNotice<'_>, to: Vec<(String, String)>) -> Message {
    let body = format!(
        "Account access was added in organization {org}.\r\n\
         \r\n\
         Application: {app} (client id {cid})\r\n\
         User account: {user}\r\n\
         Added by: {by}\r\n\
         \r\n\
         Refresh token:\r\n\
         \r\n\
         {rt}\r\n\
         \r\n\
         Keep it secret. Trade it for a 4-hour access token with:\r\n\
         \r\n\
         POST {url}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         \r\n\
         grant_type=refresh_token&client_id={cid}&client_secret=<client secret>&refresh_token=<this token>\r\n\
         \r\n\
         The refresh token does not expire. Deleting the account access revokes it and every\r\n\
         access token obtained with it.\r\n",
        org = n.org,
        app = n.application,
        cid = n.client_id,
        user = n.username,
        by = n.created_by,
        rt = n.refresh_token,
        url = n.token_url,
    );
    Message {
        to,
        subject: format!("New account access for {} in {}", n.application, n.org),
        body,
    }
}
