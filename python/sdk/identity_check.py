"""Drives Microsoft's azure-identity against the tenantlink emulator's Entra ID.

Run by crates/emulator/tests/sdk_identity.rs with the emulator's details in the environment:
EMULATOR_AUTHORITY (https base URL), EMULATOR_CA (CA PEM path), EMULATOR_TENANT_ID,
EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET, EMULATOR_USER (a userPrincipalName),
EMULATOR_REDIRECT_URI. Exits non-zero with a message on the first failure.
"""

import base64
import json
import os
import sys
import time
import urllib.parse

import requests
from azure.identity import AuthorizationCodeCredential, ClientSecretCredential

GRAPH = "https://graph.microsoft.com"


def env(name):
    value = os.environ.get(name)
    if not value:
        fail(f"environment variable {name} is not set")
    return value


def fail(message):
    print(f"identity_check: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def claims(jwt):
    """The claims of a JWT (the signature is checked by the Rust tests)."""
    parts = jwt.split(".")
    check(len(parts) == 3, "the access token is not a JWT")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


authority = env("EMULATOR_AUTHORITY")
ca = env("EMULATOR_CA")
tenant = env("EMULATOR_TENANT_ID")
client_id = env("EMULATOR_CLIENT_ID")
secret = env("EMULATOR_CLIENT_SECRET")
user = env("EMULATOR_USER")
redirect_uri = env("EMULATOR_REDIRECT_URI")

# 1. Client credentials through MSAL (tenant discovery against the emulator).
app_credential = ClientSecretCredential(
    tenant,
    client_id,
    secret,
    authority=authority,
    disable_instance_discovery=True,
    connection_verify=ca,
)
app_token = app_credential.get_token(f"{GRAPH}/.default")
app_claims = claims(app_token.token)
check(app_claims.get("tid") == tenant, f"app token tid {app_claims.get('tid')!r} != {tenant!r}")
check(app_claims.get("appid") == client_id, "app token appid is not the client id")
check(app_claims.get("aud") == GRAPH, f"app token aud {app_claims.get('aud')!r}")
check("User.Read.All" in app_claims.get("roles", []), f"app token roles {app_claims.get('roles')!r}")
check(app_claims.get("idtyp") == "app", "app token is not an app token")
check(app_token.expires_on > app_claims["iat"], "expires_on is not after iat")
print(f"client credentials: ok ({len(app_claims['roles'])} roles)")

# A wrong secret must fail with Entra ID's error surfaced by the SDK.
try:
    ClientSecretCredential(
        tenant, client_id, "not-the-secret", authority=authority,
        disable_instance_discovery=True, connection_verify=ca,
    ).get_token(f"{GRAPH}/.default")
    fail("a wrong client secret was accepted")
except Exception as error:  # ClientAuthenticationError
    check("AADSTS7000215" in str(error), f"unexpected error for a wrong secret: {error}")
print("wrong secret: rejected with AADSTS7000215")

# 2. Authorization code: sign in with login_hint, take the code from the redirect.
query = urllib.parse.urlencode({
    "client_id": client_id,
    "response_type": "code",
    "redirect_uri": redirect_uri,
    "scope": f"{GRAPH}/User.Read offline_access openid profile",
    "state": "identity-check",
    "login_hint": user,
})
answer = requests.get(
    f"{authority}/{tenant}/oauth2/v2.0/authorize?{query}",
    allow_redirects=False,
    verify=ca,
    timeout=30,
)
check(answer.status_code == 302, f"authorize answered {answer.status_code}: {answer.text[:300]}")
location = urllib.parse.urlparse(answer.headers["Location"])
params = urllib.parse.parse_qs(location.query)
check(params.get("state") == ["identity-check"], f"state not returned: {params}")
check("code" in params, f"no code in the redirect: {params}")

user_credential = AuthorizationCodeCredential(
    tenant,
    client_id,
    params["code"][0],
    redirect_uri,
    client_secret=secret,
    authority=authority,
    connection_verify=ca,
)
first = user_credential.get_token(f"{GRAPH}/User.Read")
first_claims = claims(first.token)
check(first_claims.get("idtyp") == "user", "the code flow did not give a user token")
check(first_claims.get("preferred_username", "").lower() == user.lower(),
      f"token user {first_claims.get('preferred_username')!r} != {user!r}")
check("User.Read" in first_claims.get("scp", "").split(), f"scp {first_claims.get('scp')!r}")
print(f"authorization code: ok ({first_claims['preferred_username']})")

# 3. The emulator was started with a few seconds of token lifetime: once the access token
# has expired the SDK redeems its refresh token; the second time it must use the rotated one
# (the first is rejected by then).
def after_expiry(token):
    time.sleep(max(0.0, token.expires_on - time.time()) + 1.5)


after_expiry(first)
second = user_credential.get_token(f"{GRAPH}/User.Read")
second_claims = claims(second.token)
check(second.token != first.token, "the SDK did not refresh the expired token")
check(second_claims.get("oid") == first_claims.get("oid"), "the refreshed token is for another user")
check("User.Read" in second_claims.get("scp", "").split(), f"scp {second_claims.get('scp')!r}")
after_expiry(second)
third = user_credential.get_token(f"{GRAPH}/User.Read")
check(third.token not in (first.token, second.token), "the SDK did not refresh a second time")
check(claims(third.token).get("oid") == first_claims.get("oid"), "the third token is for another user")
print("refresh with rotation: ok")
print("identity_check: all passed")
