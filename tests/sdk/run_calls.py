"""Makes ECI calls through Alibaba Cloud's unmodified Python SDKs, for tests/sdk_interop.rs.

Usage: python run_calls.py PLAN.json  (prints one JSON result per call, as a list)

The plan names the SDK mode and the endpoint (ramgate's proxy, plain http on 127.0.0.1),
and lists calls as wire parameters (`Tag.1.Key`, `ContainerGroupIds`, ...) with the access
key to sign them with. Each mode uses only the SDK's public API, pointed at ramgate by an
endpoint override:

* `v3`: `alibabacloud_eci20180808.client.Client`, typed requests, ACS3-HMAC-SHA256 (the
  default signature); actions the typed client lacks go through its generic `call_api`;
* `v3-rpc`: the same client with `signature_algorithm='v2'` (RPC v1, HMAC-SHA1);
* `v3-retry`: the `v3` client with retry settings that retry what the SDK classifies as
  throttling (`ThrottlingException`: an error with a positive `x-acs-retry-after`), three
  attempts at most, each wait the server's `x-acs-retry-after` capped at 100 ms;
* `core`: `aliyunsdkcore` `AcsClient` + `CommonRequest` (RPC v1, HMAC-SHA1), endpoint set
  with `CommonRequest(domain=host)` and `AcsClient(port=...)`.

A result is `{"ok": true, "status": 200, "body": {...}}` or, when the SDK raised its error,
`{"ok": false, "status": 403, "code": "Forbidden.RAM", "message": "...",
"auth_action": "eci:..." (when the SDK exposes AccessDeniedDetail)}`. The Rust test decides
what is expected; this script only reports what the SDK saw.
"""

import json
import re
import sys

REGION = "cn-hangzhou"
VERSION = "2018-08-08"


def nest(pairs):
    """Wire parameters back into the SDK models' map shape: `Tag.1.Key=a` becomes
    `{"Tag": [{"Key": "a"}]}`, `ResourceId.1=x` becomes `{"ResourceId": ["x"]}`."""
    root = {}
    for name, value in pairs:
        if name == "Version":  # the SDK sends its own
            continue
        parts = name.split(".")
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return listify(root)


def listify(node):
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [listify(node[k]) for k in sorted(node, key=int)]
    return {k: listify(v) for k, v in node.items()}


def snake(action):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


def throttling_retries():
    """Retry settings: what the SDK classifies as throttling, three attempts in all."""
    from darabonba.policy.retry import RetryOptions

    return RetryOptions(
        {
            "retryable": True,
            "retryCondition": [
                {"maxAttempts": 3, "exception": ["ThrottlingException"], "maxDelay": 100}
            ],
        }
    )


def v3_call(endpoint, algorithm, call, retries=None):
    from alibabacloud_eci20180808 import models
    from alibabacloud_eci20180808.client import Client
    from alibabacloud_tea_openapi import models as openapi

    config = openapi.Config(
        access_key_id=call["access_key_id"],
        access_key_secret=call["secret"],
        endpoint=endpoint,
        protocol="http",
        region_id=REGION,
    )
    if algorithm:
        config.signature_algorithm = algorithm
    if retries:
        config.retry_options = retries
    client = Client(config)
    action = call["action"]
    try:
        if hasattr(models, action + "Request"):
            request = getattr(models, action + "Request")().from_map(nest(call["params"]))
            response = getattr(client, snake(action))(request)
            status, body = response.status_code, response.body.to_map()
        else:
            # An action the typed client does not (or no longer) ship, such as
            # ExportContainerGroupTemplate: the client's generic call, which its typed
            # methods use underneath.
            status, body = generic_call(client, action, call["params"])
    except Exception as error:  # the SDK's own exception types differ between versions
        detail = getattr(error, "access_denied_detail", None) or {}
        data = getattr(error, "data", None) or {}
        return {
            "ok": False,
            "status": getattr(error, "status_code", None) or data.get("statusCode"),
            "code": getattr(error, "code", None),
            "message": str(getattr(error, "message", error)),
            "auth_action": (detail or data.get("AccessDeniedDetail") or {}).get("AuthAction"),
            "exception": type(error).__name__,
            "retry_after": getattr(error, "retry_after", None),
        }
    return {"ok": True, "status": status, "body": body}


def generic_call(client, action, params):
    from alibabacloud_tea_openapi import models as openapi
    from alibabacloud_tea_util import models as util

    spec = openapi.Params(
        action=action,
        version=VERSION,
        protocol="HTTPS",  # the Config's protocol='http' wins, as for typed calls
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    query = {name: value for name, value in params if name != "Version"}
    response = client.call_api(spec, openapi.OpenApiRequest(query=query), util.RuntimeOptions())
    return response.get("statusCode"), response.get("body")


def core_call(endpoint, call):
    from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest

    host, port = endpoint.rsplit(":", 1)
    client = AcsClient(
        call["access_key_id"], call["secret"], REGION, port=int(port), auto_retry=False
    )
    request = CommonRequest(domain=host, version=VERSION, action_name=call["action"])
    request.set_protocol_type("http")
    request.set_method("POST")
    request.set_accept_format("json")
    for name, value in call["params"]:
        if name != "Version":
            request.add_query_param(name, value)
    try:
        body = client.do_action_with_exception(request)
    except ServerException as error:
        return {
            "ok": False,
            "status": error.get_http_status(),
            "code": error.get_error_code(),
            "message": error.get_error_msg(),
            "auth_action": None,
            "exception": type(error).__name__,
        }
    except ClientException as error:
        return {
            "ok": False,
            "status": None,
            "code": error.get_error_code(),
            "message": error.get_error_msg(),
            "auth_action": None,
            "exception": type(error).__name__,
        }
    return {"ok": True, "status": 200, "body": json.loads(body)}


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        plan = json.load(f)
    mode, endpoint = plan["mode"], plan["endpoint"]
    results = []
    for call in plan["calls"]:
        if mode == "v3":
            result = v3_call(endpoint, None, call)
        elif mode == "v3-retry":
            result = v3_call(endpoint, None, call, throttling_retries())
        elif mode == "v3-rpc":
            result = v3_call(endpoint, "v2", call)
        elif mode == "core":
            result = core_call(endpoint, call)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
        results.append(result)
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
