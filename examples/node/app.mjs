// An example relying party in plain Node.js (node:http, no framework) that signs people
// in through Sekisho with panva's openid-client 6: discovery, the authorization code
// flow with PKCE S256, state and nonce, optionally pushed first (PAR, RFC 9126), the ID
// token validated by openid-client (signature against the JWKS, iss, aud, azp, exp, iat,
// nonce, and the answer's `iss` parameter, RFC 9207), then UserInfo.
// docs/integrations/node-openid-client.md explains each step;
// tests/integration/oidc/test_node_openid_client.py runs this file against a live Sekisho.
//
// Settings (environment): NODE_RP_ISSUER, NODE_RP_CLIENT_ID, NODE_RP_CLIENT_SECRET,
// NODE_RP_ORIGIN (this app's origin; the redirect URI is ORIGIN/callback), NODE_RP_PORT,
// NODE_RP_PAR=1 to push every authorization request to Sekisho's /par first (needed for a
// client registered with --require-par), and NODE_RP_ALLOW_HTTP=1 only to reach a Sekisho
// on plain http during development.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import * as client from "openid-client";

const issuer = new URL(process.env.NODE_RP_ISSUER);
const origin = process.env.NODE_RP_ORIGIN;
const redirectUri = `${origin}/callback`;
const port = Number(process.env.NODE_RP_PORT || "8200");
const insecure = process.env.NODE_RP_ALLOW_HTTP === "1";
const pushed = process.env.NODE_RP_PAR === "1";

const config = await client.discovery(
  issuer,
  process.env.NODE_RP_CLIENT_ID,
  { id_token_signed_response_alg: "ES256" },
  client.ClientSecretBasic(process.env.NODE_RP_CLIENT_SECRET),
  insecure ? { execute: [client.allowInsecureRequests] } : undefined,
);

// In memory and per process: an example, not a session store.
const sessions = new Map();
const COOKIE = "node_rp";

function session(request, response) {
  const found = /(?:^|;\s*)node_rp=([A-Za-z0-9_-]{43})/.exec(request.headers.cookie || "");
  if (found && sessions.has(found[1])) {
    return sessions.get(found[1]);
  }
  const id = randomBytes(32).toString("base64url");
  const fresh = {};
  sessions.set(id, fresh);
  const secure = origin.startsWith("https://") ? "; Secure" : "";
  response.setHeader("Set-Cookie", `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax${secure}`);
  return fresh;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function stopped(response, code) {
  html(response, 400, `<h1>Sign-in stopped</h1><p>Error code: <code id="error">${escape(code)}</code></p>`);
}

function html(response, status, body) {
  response.writeHead(status, {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
  });
  response.end(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Node relying party · Sekisho example</title></head><body><main>${body}</main></body></html>`);
}

async function login(request, response, url) {
  const state = session(request, response);
  state.verifier = client.randomPKCECodeVerifier();
  state.state = client.randomState();
  state.nonce = client.randomNonce();
  const parameters = {
    redirect_uri: redirectUri,
    scope: "openid email profile",
    code_challenge: await client.calculatePKCECodeChallenge(state.verifier),
    code_challenge_method: "S256",
    state: state.state,
    nonce: state.nonce,
  };
  // A step-up (RFC 9470): only the values this app itself asks for are passed on.
  if (url.searchParams.get("acr_values") === "phr") {
    parameters.acr_values = "phr";
  }
  const maxAge = url.searchParams.get("max_age") || "";
  if (/^[0-9]{1,6}$/.test(maxAge)) {
    parameters.max_age = maxAge;
    state.maxAge = Number(maxAge);
  } else {
    delete state.maxAge;
  }
  let target;
  if (pushed) {
    // PAR: the parameters go to /par over the back channel, authenticated like the token
    // request; the browser carries only client_id and the single-use request_uri.
    try {
      target = await client.buildAuthorizationUrlWithPAR(config, parameters);
    } catch (error) {
      stopped(response, error instanceof client.ResponseBodyError ? error.error : error.code || "failed");
      return;
    }
  } else {
    target = client.buildAuthorizationUrl(config, parameters);
  }
  response.writeHead(303, { Location: target.href });
  response.end();
}

async function callback(request, response, url) {
  const state = session(request, response);
  if (!state.verifier) {
    stopped(response, "no_request");
    return;
  }
  const checks = {
    pkceCodeVerifier: state.verifier,
    expectedState: state.state,
    expectedNonce: state.nonce,
    idTokenExpected: true,
    maxAge: state.maxAge,
  };
  delete state.verifier;
  let tokens;
  try {
    tokens = await client.authorizationCodeGrant(config, url, checks);
  } catch (error) {
    // Sekisho's own code when it sent one (an error= answer, or an error body such as
    // 429 rate_limited from the token endpoint); else openid-client's (a failed check).
    const sekisho = error instanceof client.AuthorizationResponseError || error instanceof client.ResponseBodyError;
    const code = sekisho ? error.error : error.code || "failed";
    stopped(response, code);
    return;
  }
  const claims = tokens.claims();
  state.claims = claims;
  state.userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  response.writeHead(303, { Location: "/" });
  response.end();
}

function home(request, response) {
  const state = session(request, response);
  if (!state.claims) {
    html(response, 200, '<h1>Node relying party</h1><p><a href="/login" id="sign-in">Sign in with Sekisho</a></p>');
    return;
  }
  const { claims, userinfo } = state;
  html(
    response,
    200,
    `<h1>Signed in</h1><dl>
<dt>sub</dt><dd id="sub">${escape(claims.sub)}</dd>
<dt>email</dt><dd id="email">${escape(userinfo.email)}</dd>
<dt>acr</dt><dd id="acr">${escape(claims.acr)}</dd>
<dt>amr</dt><dd id="amr">${escape((claims.amr || []).join(" "))}</dd>
<dt>auth_time</dt><dd id="auth-time">${escape(claims.auth_time)}</dd>
</dl>`,
  );
}

// What the sign-in established, as JSON: the validated ID token's claims and UserInfo.
function me(request, response) {
  const state = session(request, response);
  response.writeHead(state.claims ? 200 : 401, {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
  });
  response.end(JSON.stringify(state.claims ? { claims: state.claims, userinfo: state.userinfo } : {}));
}

const routes = { "/": home, "/login": login, "/callback": callback, "/me": me };

createServer((request, response) => {
  const url = new URL(request.url, origin);
  const route = request.method === "GET" ? routes[url.pathname] : undefined;
  if (!route) {
    response.writeHead(404).end();
    return;
  }
  Promise.resolve(route(request, response, url)).catch((error) => {
    console.error(error);
    if (!response.headersSent) {
      response.writeHead(500);
    }
    response.end();
  });
}).listen(port, "127.0.0.1", () => {
  console.log(`listening on ${origin}`);
});
