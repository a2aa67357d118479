"""The path of a provider request through the proxy, as one flow.

- `flow`: `Flow`, everything held about one request (route, adapter, tenant, body, decoded
  request, policies and their decisions, placeholders, reply headers, record, span).
- `request_path`: key -> tenant -> body -> decode -> policies -> confirm -> redact -> forward.
- `answer_path`: the answer back to the client, whole or streamed, through the answer policies.
- `refusal`: `refuse(flow, decision, ...)`, the one way a decision stops a request or an answer.

`capsem_proxy.app` is the ASGI shell around it (local routes, CORS, the access log).
"""

from capsem_proxy.proxying.answer_path import AnswerPath
from capsem_proxy.proxying.flow import Flow
from capsem_proxy.proxying.refusal import refuse
from capsem_proxy.proxying.request_path import RequestPath

__all__ = ["AnswerPath", "Flow", "RequestPath", "refuse"]
