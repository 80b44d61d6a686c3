"""Pre-signed requests for the `signed-v3` and `signed-v1` workloads of benches/load.sh: COUNT
DescribeContainerLog calls on one container group, each with its own nonce, signed now
with the access keys given (in turn), written as `<length>\\n<raw HTTP/1.1 request>` records
that benches/load.lua replays. Signing happens here, before the run, so that wrk only
copies bytes and costs every target the same.

    python3 benches/sign_requests.py v3|v1 COUNT GROUP_ID OUT KEY_ID:SECRET [KEY_ID:SECRET ...]

The signatures follow docs/REFERENCE.md (ACS3-HMAC-SHA256 over the canonical request;
RPC v1 HMAC-SHA1 over the sorted parameters), as the official SDKs compute them; the Host
header is a fixed endpoint name, signed, so the same bytes go to every target.
"""

import base64
import hashlib
import hmac
import sys
import time
import uuid
from urllib.parse import quote

HOST = "eci.cn-hangzhou.aliyuncs.com"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def enc(text):
    return quote(text, safe="-_.~")


def canonical_query(params):
    return "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))


def v3(group, key_id, secret, date, nonce):
    params = {"ContainerGroupId": group, "RegionId": "cn-hangzhou", "Format": "JSON"}
    query = canonical_query(params)
    headers = {
        "host": HOST,
        "x-acs-action": "DescribeContainerLog",
        "x-acs-content-sha256": EMPTY_SHA256,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-version": "2018-08-08",
    }
    names = sorted(headers)
    canonical = "\n".join(
        ["GET", "/", query, "".join(f"{n}:{headers[n]}\n" for n in names), ";".join(names), EMPTY_SHA256]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={';'.join(names)},Signature={signature}"
    )
    lines = [f"GET /?{query} HTTP/1.1"] + [f"{n}: {v}" for n, v in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


def v1(group, key_id, secret, date, nonce):
    params = {
        "Action": "DescribeContainerLog",
        "ContainerGroupId": group,
        "RegionId": "cn-hangzhou",
        "Format": "JSON",
        "Version": "2018-08-08",
        "AccessKeyId": key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": date,
    }
    query = canonical_query(params)
    to_sign = "GET&%2F&" + enc(query)
    digest = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    signature = base64.b64encode(digest).decode()
    return f"GET /?{query}&Signature={enc(signature)} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"


def main():
    kind, count, group, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    keys = [k.split(":", 1) for k in sys.argv[5:]]
    sign = {"v3": v3, "v1": v1}[kind]
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(out, "wb") as f:
        for i in range(count):
            key_id, secret = keys[i % len(keys)]
            raw = sign(group, key_id, secret, date, uuid.uuid4().hex).encode()
            f.write(b"%d\n" % len(raw))
            f.write(raw)


if __name__ == "__main__":
    main()
