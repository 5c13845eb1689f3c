"""Registering a passkey through Graph with the Microsoft Graph Python SDK's own models, as Microsoft documents it
(api-reference/v1.0/api/authentication-post-fido2methods.md and fido2authenticationmethod-creationoptions.md):
`creationOptions` through the SDK's request builder, then `POST fido2Methods` with a `fido2AuthenticationMethod`
whose `publicKeyCredential` is the SDK's `WebauthnPublicKeyCredential`: `id`, `response` (`clientDataJSON`,
`attestationObject`) and `clientExtensionResults`, and no `rawId` or `type`, which the model does not have. The
credential is made by the python-fido2 software authenticator (interop/webauthn/softauthn.py)."""
from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support import assert_graph_error, unique

sys.path.insert(0, str(Path(__file__).resolve().parent / "webauthn"))
import softauthn  # noqa: E402


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def user(graph, tenant_a):
    return graph.create_user(tenant_a.domain, unique("sdkpk"))


def creation_options(sdk, user_id: str):
    """`GET …/fido2Methods/creationOptions()` through the SDK: a WebauthnCredentialCreationOptions."""
    methods = sdk.client.users.by_user_id(user_id).authentication.fido2_methods
    return sdk.run(methods.creation_options.get())


def sdk_body(tessera, options, authenticator, id_override: str | None = None):
    """The SDK's fido2AuthenticationMethod for a credential made against `options`."""
    from msgraph.generated.models.fido2_authentication_method import Fido2AuthenticationMethod
    from msgraph.generated.models.webauthn_authentication_extensions_client_outputs import (
        WebauthnAuthenticationExtensionsClientOutputs)
    from msgraph.generated.models.webauthn_authenticator_attestation_response import (
        WebauthnAuthenticatorAttestationResponse)
    from msgraph.generated.models.webauthn_public_key_credential import WebauthnPublicKeyCredential

    parts = urlsplit(tessera.base_url)
    created = authenticator.make_credential(b64u_decode(options.public_key.challenge), options.public_key.rp.id,
                                            f"{parts.scheme}://{parts.netloc}")
    return Fido2AuthenticationMethod(
        display_name="SDK key",
        public_key_credential=WebauthnPublicKeyCredential(
            id=id_override or created["id"],
            response=WebauthnAuthenticatorAttestationResponse(
                client_data_j_s_o_n=created["response"]["clientDataJSON"],
                attestation_object=created["response"]["attestationObject"]),
            client_extension_results=WebauthnAuthenticationExtensionsClientOutputs()))


def post_fido2_method(sdk, user_id: str, body):
    """`POST …/authentication/fido2Methods` through the SDK's request adapter with its own model and error mapping:
    msgraph-sdk's v1.0 request builder for fido2Methods predates the POST (it has get() only), so the request is
    built the way its generated post() methods build theirs."""
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation
    from msgraph.generated.models.fido2_authentication_method import Fido2AuthenticationMethod
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    builder = sdk.client.users.by_user_id(user_id).authentication.fido2_methods
    info = RequestInformation(Method.POST, builder.url_template, builder.path_parameters)
    info.headers.try_add("Accept", "application/json")
    info.set_content_from_parsable(builder.request_adapter, "application/json", body)
    return sdk.run(builder.request_adapter.send_async(info, Fido2AuthenticationMethod, {"XXX": ODataError}))


def serialized(model) -> dict:
    """What the SDK sends for a model: its own JSON serialization writer."""
    from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter

    writer = JsonSerializationWriter()
    writer.write_object_value(None, model)
    return json.loads(writer.get_serialized_content())


def test_the_sdk_models_body_has_no_raw_id_and_no_type(tessera, sdk, user):
    body = sdk_body(tessera, creation_options(sdk, user["id"]), softauthn.SoftAuthenticator("ES256"))
    credential = serialized(body)["publicKeyCredential"]
    assert set(credential) <= {"@odata.type", "id", "response", "clientExtensionResults"}, credential
    assert set(credential["response"]) <= {"@odata.type", "clientDataJSON", "attestationObject"}, credential


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS384"])
def test_a_passkey_registers_with_the_sdk_models(tessera, sdk, graph, user, alg):
    options = creation_options(sdk, user["id"])
    assert options.public_key.challenge and options.public_key.rp.id
    assert any(p.alg == softauthn.COSE_ALG.get(alg, {"PS384": -38}.get(alg)) for p in options.public_key.pub_key_cred_params)
    authenticator = softauthn.SoftAuthenticator(alg)
    methods = sdk.client.users.by_user_id(user["id"]).authentication.fido2_methods
    created = post_fido2_method(sdk, user["id"], sdk_body(tessera, options, authenticator))
    assert created.id and created.display_name == "SDK key"
    assert created.passkey_type.value == "deviceBound" and created.attestation_level.value == "notAttested"
    listed = sdk.run(methods.get())
    assert [m.id for m in listed.value] == [created.id]
    # The credential is the one the authenticator made: rawId came from `id`.
    raw = graph.ok("GET", f"users/{user['id']}/authentication/fido2Methods/{created.id}")
    assert raw["id"] == created.id and "_credentialId" not in raw


def test_an_id_that_is_not_the_credentials_is_refused_and_nothing_is_stored(tessera, sdk, graph, user):
    from kiota_abstractions.api_error import APIError

    options = creation_options(sdk, user["id"])
    other = base64.urlsafe_b64encode(bytes(32)).rstrip(b"=").decode()
    body = sdk_body(tessera, options, softauthn.SoftAuthenticator("ES256"), id_override=other)
    with pytest.raises(APIError) as refused:
        post_fido2_method(sdk, user["id"], body)
    assert refused.value.response_status_code == 400
    resp = graph.post(f"users/{user['id']}/authentication/fido2Methods", json=serialized(body))
    assert_graph_error(resp, 400)
    assert graph.ok("GET", f"users/{user['id']}/authentication/fido2Methods")["value"] == []
