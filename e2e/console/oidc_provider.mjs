// A real OpenID provider for the SSO tests: the certified `oidc-provider` package on a
// loopback port, with its own login and consent pages (devInteractions: any login name,
// any password). Used by the Rust tests (crates/jitgate-server/tests/it/sso.rs,
// crates/jitgate/tests/it/sso_cli.rs) and the console test (console.test.mjs).
//
//   node oidc_provider.mjs '{"client_id": "...", "client_secret": "...", "redirect_uris": [...]}'
//
// Prints one JSON line when it listens: {"issuer": "http://127.0.0.1:<port>"}. Accounts are
// whatever login name is typed; each has `sub` = the login name, a verified e-mail
// `<login>@plant.example`, and groups: ["ot-approvers"] for names starting with "approver-"
// or equal to "alice", [] otherwise. Other options: "port" (default: a free one), and
// "exit_with_stdin": true to stop when stdin closes (so that a test that dies does not
// leave it behind). Runs until killed.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const opts = JSON.parse(process.argv[2] || '{}');
const server = http.createServer();
await new Promise((resolve) => server.listen(opts.port || 0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

// A signing key made for this run (never the package's development key).
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: opts.client_id || 'jitgate',
    client_secret: opts.client_secret || 'jitgate-test-secret',
    redirect_uris: opts.redirect_uris || [],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const approver = id === 'alice' || id.startsWith('approver-');
        return {
          sub: id,
          email: `${id}@plant.example`,
          email_verified: true,
          name: id,
          groups: approver ? ['ot-approvers'] : [],
        };
      },
    };
  },
});
// Plain HTTP on loopback: the provider would otherwise refuse to set its cookies.
provider.proxy = false;
server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
if (opts.exit_with_stdin) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
