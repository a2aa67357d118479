"""Azure OpenAI's and Vertex AI's own SDK clients through the real proxy, and an OpenAI-compatible
upstream chosen by model glob: named upstreams over HTTP against two fake providers."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import openai
import pytest
from google import genai
from google.genai import types
from google.oauth2.credentials import Credentials
from openai import AzureOpenAI, OpenAI

from tests.fake_provider.process import FakeProviderProcess, start_fake_provider
from tests.proxy_process import ProxyProcess, start_proxy

pytestmark = pytest.mark.integration  # a real proxy and real fake upstreams over HTTP

AZURE_KEY = "azure-test-key-0123456789abcdef"
OPENAI_KEY = "sk-test-upstreams-0123456789"
VERTEX_TOKEN = "ya29.fake-vertex-token-0123456789"
API_VERSION = "2024-10-21"
DEPLOYMENT = "gpt-4o-eu"


@pytest.fixture(scope="module")
def second_provider() -> Iterator[FakeProviderProcess]:
    provider = start_fake_provider()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def routed_proxy(fake_provider: FakeProviderProcess, second_provider: FakeProviderProcess) -> Iterator[ProxyProcess]:
    base = fake_provider.base_url
    config = {
        "upstreams": [
            {"name": "azure-eu", "type": "azure_openai", "base_url": base, "api_version": API_VERSION},
            {"name": "local", "type": "openai_compatible", "base_url": second_provider.base_url + "/v1",
             "models": ["llama-*"], "headers": {"x-team": "research"}},
            {"name": "openai", "type": "openai", "base_url": base + "/v1"},
            {"name": "vertex", "type": "vertex_gemini", "base_url": base},
        ],
        "models": {"eu-gpt": [f"azure-eu:{DEPLOYMENT}"]},
    }
    process = start_proxy(base, config)
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _fresh_second(second_provider: FakeProviderProcess) -> None:
    second_provider.reset()


def _header(record: dict, name: str) -> list[str]:
    return [value for key, value in record["headers"] if key.lower() == name]


def _azure(proxy: ProxyProcess) -> AzureOpenAI:
    return AzureOpenAI(azure_endpoint=proxy.base_url, api_key=AZURE_KEY, api_version=API_VERSION, max_retries=0)


def test_azure_client_chat_reaches_the_deployment_with_its_api_key(routed_proxy, fake_provider):
    with _azure(routed_proxy) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=DEPLOYMENT, messages=[{"role": "user", "content": "Say hello"}]
        )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the fake provider."
    assert raw.headers["x-capsem-upstream"] == "azure-eu"
    record = fake_provider.last()
    assert record["path"] == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert record["query_string"] == f"api-version={API_VERSION}"
    assert _header(record, "api-key") == [AZURE_KEY]
    assert _header(record, "authorization") == []


def test_azure_client_streams(routed_proxy, fake_provider):
    with _azure(routed_proxy) as client:
        stream = client.chat.completions.create(
            model=DEPLOYMENT, messages=[{"role": "user", "content": "Say hello"}], stream=True,
            extra_headers=fake_provider.scenario_header(reply="Streamed from Azure's stand-in."),
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Streamed from Azure's stand-in."
    assert fake_provider.last()["path"] == f"/openai/deployments/{DEPLOYMENT}/chat/completions"


def test_azure_client_embeddings(routed_proxy, fake_provider):
    with _azure(routed_proxy) as client:
        result = client.embeddings.create(model="embed-eu", input="hello")
    assert len(result.data[0].embedding) > 0
    assert fake_provider.last()["path"] == "/openai/deployments/embed-eu/embeddings"


def test_azure_client_responses_api(routed_proxy, fake_provider):
    with _azure(routed_proxy) as client:
        response = client.responses.create(model=DEPLOYMENT, input="Say hello")
    assert response.output_text == "Hello from the fake provider."
    record = fake_provider.last()
    assert record["path"] == "/openai/responses"
    assert _header(record, "api-key") == [AZURE_KEY]


def test_openai_client_reaches_an_azure_deployment_through_an_alias(routed_proxy, fake_provider):
    with OpenAI(base_url=routed_proxy.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="eu-gpt", messages=[{"role": "user", "content": "hi"}]
        )
    assert raw.headers["x-capsem-upstream"] == f"azure-eu:{DEPLOYMENT}"
    assert raw.parse().choices[0].message.content == "Hello from the fake provider."
    record = fake_provider.last()
    assert record["path"] == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert record["query_string"] == f"api-version={API_VERSION}"
    assert _header(record, "api-key") == [OPENAI_KEY]
    assert _header(record, "authorization") == []


def test_azure_content_filter_error_reaches_the_sdk_as_azure_sent_it(routed_proxy, fake_provider):
    filtered = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
            "policy.",
            "type": None, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
            },
        }
    }
    with _azure(routed_proxy) as client, pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=DEPLOYMENT, messages=[{"role": "user", "content": "Say hello"}],
            extra_headers=fake_provider.scenario_header(status=400, error_body=filtered),
        )
    assert caught.value.code == "content_filter"
    assert caught.value.body["innererror"]["content_filter_result"]["hate"]["filtered"] is True


def test_azure_path_without_a_key_is_refused_in_openai_shape(routed_proxy, fake_provider):
    import httpx

    response = httpx.post(
        f"{routed_proxy.base_url}/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={API_VERSION}",
        json={"messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"]
    assert fake_provider.requests() == []


def test_model_glob_picks_the_openai_compatible_upstream(routed_proxy, fake_provider, second_provider):
    with OpenAI(base_url=routed_proxy.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="llama-3.1-8b", messages=[{"role": "user", "content": "Say hello"}]
        )
        assert raw.headers["x-capsem-upstream"] == "local"
        other = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Say hello"}]
        )
        assert other.headers["x-capsem-upstream"] == "openai"
    (record,) = second_provider.requests()
    assert record["path"] == "/v1/chat/completions"
    assert _header(record, "authorization") == [f"Bearer {OPENAI_KEY}"]
    assert _header(record, "x-team") == ["research"]
    assert json.loads(base64.b64decode(record["body_b64"]))["model"] == "llama-3.1-8b"
    assert [r["path"] for r in fake_provider.requests()] == ["/v1/chat/completions"]


def _vertex(proxy: ProxyProcess) -> genai.Client:
    return genai.Client(
        vertexai=True, project="capsem-test", location="europe-west4", credentials=Credentials(token=VERTEX_TOKEN),
        http_options=types.HttpOptions(base_url=proxy.base_url, api_version="v1"),
    )


def test_vertex_client_generates_through_the_proxy(routed_proxy, fake_provider):
    with _vertex(routed_proxy) as client:
        response = client.models.generate_content(model="gemini-2.0-flash", contents="Say hello")
    assert response.text == "Hello from the fake provider."
    record = fake_provider.last()
    assert record["path"] == (
        "/v1/projects/capsem-test/locations/europe-west4/publishers/google/models/gemini-2.0-flash:generateContent"
    )
    assert _header(record, "authorization") == [f"Bearer {VERTEX_TOKEN}"]


def test_vertex_client_streams_through_the_proxy(routed_proxy, fake_provider):
    with _vertex(routed_proxy) as client:
        chunks = client.models.generate_content_stream(
            model="gemini-2.0-flash", contents="Say hello",
            config=types.GenerateContentConfig(
                http_options=types.HttpOptions(headers=fake_provider.scenario_header(reply="Streamed from Vertex."))
            ),
        )
        assert "".join(chunk.text or "" for chunk in chunks) == "Streamed from Vertex."
    assert fake_provider.last()["path"].endswith("/models/gemini-2.0-flash:streamGenerateContent")
