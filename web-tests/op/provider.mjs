// An OpenID Provider not written here: the certified `oidc-provider` (npm),
// configured as a Swedish e-ID provider would be (Sweden Connect's profile,
// id.oidc.se): one client (kuvert), one test person with the personal
// identity number claim, names and `acr` loa3. kuvert logs in against it
// configured as in production (flows/90-third-party-op.mjs), which shows
// that the production login path is configuration only.
//
// It listens on loopback over plain HTTP: kuvert is started with
// --allow-plain-http, the switch for a closed test network (decision 0018,
// "A provider not written here").
//
// Its interaction (login) page is its own and minimal: oidc-provider's
// development pages load a web font from the internet, which the test
// machine cannot reach. There is no consent page: the grant is made at
// login for the one client (loadExistingGrant), as a first-party e-ID
// provider does.

import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import Provider from "oidc-provider";

export const LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3";
export const PERSONAL_NUMBER_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber";
export const PERSONAL_NUMBER_SCOPE = "https://id.oidc.se/scope/naturalPersonNumber";

/// The one test person: a Skatteverket test personnummer
/// (../shared/vectors/identity/cases2.txt), never a real person's.
export const testPerson = {
  accountId: "agnes",
  personalIdentityNumber: "198503012380",
  given_name: "Agnes",
  family_name: "Testsson",
};

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, error) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test e-ID provider: log in</title>
<style>
  body { font: 1.1rem/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 30rem; padding: 1rem; color: #1a1a1a; }
  label, input, button { display: block; font: inherit; }
  input { width: 100%; box-sizing: border-box; padding: .5rem; margin: .25rem 0 1rem; border: 2px solid #555; }
  button { padding: .6rem 1.2rem; background: #004b87; color: #fff; border: 0; }
  :focus-visible { outline: 3px solid #e8a317; outline-offset: 2px; }
  .error { color: #a00; }
</style></head>
<body><main>
<h1>Test e-ID provider (oidc-provider)</h1>
<p>A provider not written by kuvert, for its browser tests. Test person:
<strong>${escape(testPerson.given_name)} ${escape(testPerson.family_name)}</strong>
(user name <code>${escape(testPerson.accountId)}</code>), level of assurance 3.</p>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}">
  <label for="login">User name</label>
  <input id="login" name="login" autocomplete="username" required>
  <button type="submit">Log in</button>
</form>
</main></body></html>`;
}

async function formBody(req) {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw new Error("form body over 64 KiB");
  }
  return new URLSearchParams(body);
}

/// Starts the provider on `port` (loopback). `client` is kuvert's
/// registration: { redirectUri, auth: 'client_secret_basic' | 'private_key_jwt',
/// secret (for client_secret_basic), jwksUri (for private_key_jwt) }.
/// Returns { issuer, tokenRequests, stop }; `tokenRequests` lists how kuvert
/// authenticated at the token endpoint, so a test can tell the methods apart.
export async function startProvider({ port, client }) {
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "op-rs256", alg: "RS256", use: "sig" };
  const registration = {
    client_id: "kuvert",
    redirect_uris: [client.redirectUri],
    response_types: ["code"],
    grant_types: ["authorization_code"],
    token_endpoint_auth_method: client.auth,
    id_token_signed_response_alg: "RS256",
  };
  if (client.auth === "private_key_jwt") {
    registration.jwks_uri = client.jwksUri;
    registration.token_endpoint_auth_signing_alg = "EdDSA";
  } else {
    registration.client_secret = client.secret;
  }
  const provider = new Provider(issuer, {
    clients: [registration],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    acrValues: [LOA3],
    claims: {
      acr: null,
      auth_time: null,
      sid: null,
      openid: ["sub"],
      profile: ["given_name", "family_name", "name"],
      [PERSONAL_NUMBER_SCOPE]: [PERSONAL_NUMBER_CLAIM],
    },
    // kuvert reads the person from the ID token, as Sweden Connect's
    // profile delivers it; oidc-provider would otherwise keep the scope's
    // claims for the userinfo endpoint.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    // oidc-provider refuses to fetch from loopback (SSRF protection), and
    // kuvert's jwks_uri is on loopback here: that one URL, nothing else.
    fetch(url, options) {
      if (client.jwksUri && String(url) === client.jwksUri) {
        const { dispatcher, ...direct } = options;
        return fetch(url, direct);
      }
      return fetch(url, options);
    },
    // Short lives, as for an e-ID login (and no notices about defaults).
    ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 300, IdToken: 300, AuthorizationCode: 60 },
    async findAccount(ctx, id) {
      if (id !== testPerson.accountId) return undefined;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            given_name: testPerson.given_name,
            family_name: testPerson.family_name,
            name: `${testPerson.given_name} ${testPerson.family_name}`,
            [PERSONAL_NUMBER_CLAIM]: testPerson.personalIdentityNumber,
          };
        },
      };
    },
    async loadExistingGrant(ctx) {
      const clientId = ctx.oidc.client.clientId;
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session.grantIdFor(clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(`openid profile ${PERSONAL_NUMBER_SCOPE}`);
      await grant.save();
      return grant;
    },
  });
  const tokenRequests = [];
  provider.on("grant.success", (ctx) => {
    tokenRequests.push(ctx.oidc.params?.client_assertion ? "private_key_jwt" : ctx.get("authorization") ? "client_secret_basic" : "other");
  });
  const errors = [];
  for (const event of ["grant.error", "server_error", "authorization.error"]) {
    provider.on(event, (ctx, error) => {
      // The whole chain: oidc-provider wraps the reason (a bad JWKS, a
      // refused assertion) in a generic invalid_client.
      let text = `${event}: ${error?.message} ${error?.error_description ?? ""}`;
      for (let cause = error?.cause; cause; cause = cause.cause) text += ` <- ${cause.message ?? cause}`;
      errors.push(text);
    });
  }
  const handle = provider.callback();
  const server = createServer(async (req, res) => {
    const interaction = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(new URL(req.url, issuer).pathname);
    if (!interaction) return handle(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      res.setHeader("Cache-Control", "no-store");
      if (req.method === "POST") {
        const login = (await formBody(req)).get("login");
        if (login !== testPerson.accountId) {
          res.statusCode = 400;
          res.setHeader("Content-Type", "text/html; charset=utf-8");
          return res.end(loginPage(details.uid, `No test person is called "${login}".`));
        }
        return await provider.interactionFinished(
          req,
          res,
          { login: { accountId: login, acr: LOA3 } },
          { mergeWithLastSubmission: false },
        );
      }
      res.setHeader("Content-Type", "text/html; charset=utf-8");
      res.end(loginPage(details.uid));
    } catch (e) {
      errors.push(`interaction: ${e?.message ?? e}`);
      res.statusCode = 400;
      res.setHeader("Content-Type", "text/plain; charset=utf-8");
      res.end(`interaction failed: ${e?.message ?? e}`);
    }
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", ok);
  });
  return {
    issuer,
    tokenRequests,
    errors,
    async stop() {
      server.closeAllConnections?.();
      await new Promise((ok) => server.close(ok));
    },
  };
}
