// The peer of grantry's side-by-side benchmark (PERFORMANCE.md): panva's oidc-provider with
// its default in-memory adapter (nothing is written to disk), one confidential client allowed
// the client_credentials grant, and token introspection.
//
//   node server.mjs <port> [client_id] [client_secret]
//
// bench/run --peer oidc-provider starts it and drives /token and /token/introspection.
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? 3000);
const clientId = process.argv[3] ?? 'bench';
const clientSecret = process.argv[4] ?? 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz';

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      // The same client authentication as grantry's scenarios: the secret in the form body
      // at the token endpoint, HTTP Basic at introspection.
      token_endpoint_auth_method: 'client_secret_post',
      introspection_endpoint_auth_method: 'client_secret_basic',
      scope: 'api',
    },
  ],
  scopes: ['api'],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
