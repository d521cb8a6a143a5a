// A local OpenID provider to try openpacs' single sign-on with (compose.sso.yaml): panva's
// oidc-provider, with its development login page, where any password signs in as one of the
// accounts in provider.json (their groups become openpacs roles through [auth.oidc] roles).
// A demonstration only: in production, [auth.oidc] names the hospital's provider.
//
//   node provider.mjs provider.json
//
// provider.json: {issuer, host, port, clients, accounts: {name: {groups: [...]}}}.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2] || "/etc/idp/provider.json", "utf-8"));
const accounts = config.accounts || {};

const provider = new Provider(config.issuer, {
  clients: config.clients,
  pkce: { required: () => true },
  conformIdTokenClaims: false, // the groups in the ID token, where openpacs reads them
  claims: {
    openid: ["sub"],
    profile: ["preferred_username", "name"],
    groups: ["groups"],
  },
  scopes: ["openid", "profile", "groups"],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const account = accounts[id] || {};
        return { sub: id, preferred_username: id, name: account.name || id, groups: account.groups || [] };
      },
    };
  },
  // Consent without a page: the demonstration's only client is openpacs.
  async loadExistingGrant(ctx) {
    const grantId =
      ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid profile groups");
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
});
provider.on("server_error", (ctx, error) => console.error("server_error", error));
provider.listen(config.port, config.host || "0.0.0.0", () =>
  console.log(`listening on ${config.host || "0.0.0.0"}:${config.port}, issuer ${config.issuer}`),
);
