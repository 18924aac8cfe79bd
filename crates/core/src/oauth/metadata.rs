//! Authorization-server metadata (RFC 8414): exactly what this server supports.

use serde_json::{json, Value};

use crate::permissions::{Grant, GrantSet};
use crate::settings::Settings;

/// RFC 8414 metadata: exactly what this server supports.
pub fn metadata(settings: &Settings) -> Value {
    let base = settings.issuer();
    let scopes: Vec<&str> = GrantSet::all().iter().map(Grant::name).collect();
    json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "jwks_uri": format!("{base}/oauth/jwks"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": format!("{base}/docs/api-keys"),
        // This deployment's pod and where the table of every pod is (docs/architecture.md,
        // Pods); RFC 8414 §2 lets a server add its own members.
        "pod": {"id": settings.pod_id, "name": settings.pod_name},
        "pods_endpoint": format!("{base}/pods"),
    })
}
