"""Microsoft's Graph SDK (msgraph-sdk) against the tenantlink emulator.

Run by crates/emulator/tests/sdk_graph.rs, which starts the emulator and passes everything
through TL_* environment variables. Only the base URL, the CA and instance discovery differ
from talking to Microsoft. Exits non-zero with a message on the first failed check.
"""

import asyncio
import json
import os
import ssl
import sys
import urllib.request

import httpx
from azure.identity import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory

ENV = {k: v for k, v in os.environ.items() if k.startswith("TL_")}


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def control(method, path, body=None):
    """Calls the emulator's control API (not part of Microsoft's surface)."""
    ctx = ssl.create_default_context(cafile=ENV["TL_CA"])
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        ENV["TL_CONTROL_URL"] + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, context=ctx) as res:
        text = res.read()
        return json.loads(text) if text else None


def graph_client():
    credential = ClientSecretCredential(
        tenant_id=ENV["TL_TENANT"],
        client_id=ENV["TL_CLIENT_ID"],
        client_secret=ENV["TL_CLIENT_SECRET"],
        authority=ENV["TL_AUTHORITY"],
        disable_instance_discovery=True,
        connection_verify=ENV["TL_CA"],
    )
    host = ENV["TL_GRAPH_URL"].split("/")[2].split(":")[0]
    auth = AzureIdentityAuthenticationProvider(
        credential,
        scopes=["https://graph.microsoft.com/.default"],
        allowed_hosts=[host],
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=ENV["TL_CA"]))
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = ENV["TL_GRAPH_URL"]
    return GraphServiceClient(request_adapter=adapter)


async def list_all_users(client):
    config = UsersRequestBuilder.UsersRequestBuilderGetRequestConfiguration(
        query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            top=999, select=["id", "displayName", "userPrincipalName", "department"]
        )
    )
    page = await client.users.get(request_configuration=config)
    ids, pages = [], 0
    while True:
        pages += 1
        ids.extend(u.id for u in page.value)
        if not page.odata_next_link:
            break
        page = await client.users.with_url(page.odata_next_link).get()
    return ids, pages


async def delta_round(client, link=None):
    builder = client.users.delta if link is None else client.users.delta.with_url(link)
    page = await builder.get()
    seen = []
    while True:
        seen.extend(page.value)
        if page.odata_next_link:
            page = await client.users.delta.with_url(page.odata_next_link).get()
        else:
            return seen, page.odata_delta_link


async def main():
    client = graph_client()

    ids, pages = await list_all_users(client)
    expected = int(ENV["TL_EXPECTED_USERS"])
    check(len(ids) == expected, f"listed {len(ids)} users in {pages} pages, expected {expected}")
    check(len(set(ids)) == len(ids), "a user was listed twice")
    check(pages >= 2, f"expected several pages, got {pages}")

    group = ENV["TL_GROUP_ID"]
    members = await client.groups.by_group_id(group).members.get()
    found = []
    while True:
        found.extend(members.value)
        if not members.odata_next_link:
            break
        members = await client.groups.by_group_id(group).members.with_url(members.odata_next_link).get()
    check(len(found) == int(ENV["TL_EXPECTED_MEMBERS"]), f"group has {len(found)} members")
    check(all(m.odata_type in ("#microsoft.graph.user", "#microsoft.graph.group") for m in found),
          "members carry their @odata.type")

    first, delta_link = await delta_round(client)
    check(len(first) == expected, f"first delta round had {len(first)} users")
    check(delta_link, "the first delta round ends with a deltaLink")

    domain = ENV["TL_DOMAIN"]
    created = control("POST", f"/tenants/{ENV['TL_TENANT']}/users",
                      {"displayName": "SDK Delta", "userPrincipalName": f"sdk.delta@{domain}"})
    changed, next_link = await delta_round(client, delta_link)
    check(any(u.id == created["id"] for u in changed), "the new user shows up in the next delta round")
    check(len(changed) < expected, "the next delta round holds only changes")
    check(next_link, "the second round ends with a deltaLink too")
    print(f"ok: {len(ids)} users in {pages} pages, {len(found)} group members, delta round trip")


asyncio.run(main())
