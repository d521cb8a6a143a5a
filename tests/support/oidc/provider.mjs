// An OpenID provider for the single sign-on tests: panva's oidc-provider with its development
// login page (any user name, any password), consent granted without a page, PKCE required,
// RP-initiated logout, and JWT access tokens for one resource (client credentials).
//
//   node provider.mjs CONFIG.json
//
// CONFIG: {module, issuer, port, jwks, clients, accounts, resource, audience,
//          access_token_seconds, client_auth_methods}. Prints "listening" once it serves.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const config = JSON.parse(readFileSync(process.argv[2], "utf-8"));
const { default: Provider } = await import(pathToFileURL(config.module).href);
const accounts = config.accounts || {};
const clientClaims = Object.fromEntries(
  config.clients.map((client) => [client.client_id, client.extra_claims || {}]),
);

const provider = new Provider(config.issuer, {
  clients: config.clients.map(({ extra_claims, ...client }) => client),
  jwks: config.jwks,
  pkce: { required: () => true },
  ...(config.client_auth_methods ? { clientAuthMethods: config.client_auth_methods } : {}),
  conformIdTokenClaims: false,
  claims: {
    openid: ["sub"],
    profile: ["preferred_username", "name"],
    groups: ["groups"],
  },
  scopes: ["openid", "profile", "groups", "dicom"],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const account = accounts[id] || {};
        return { sub: id, preferred_username: id, name: account.name || id, groups: account.groups || [] };
      },
    };
  },
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
  extraTokenClaims(ctx, token) {
    if (token.kind === "ClientCredentials") return clientClaims[token.clientId] || {};
    return undefined;
  },
  ttl: { ClientCredentials: config.access_token_seconds || 600 },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== config.resource) throw new Error("unknown resource");
        return {
          scope: "dicom",
          audience: config.audience,
          accessTokenFormat: "jwt",
          accessTokenTTL: config.access_token_seconds || 600,
          jwt: { sign: { alg: "RS256" } },
        };
      },
    },
  },
});
provider.on("server_error", (ctx, error) => console.error("server_error", error));
provider.on("end_session.error", (ctx, error) => console.error("end_session.error", error, error.cause));
provider.listen(config.port, "127.0.0.1", () => console.log("listening"));
