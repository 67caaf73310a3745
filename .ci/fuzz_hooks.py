"""Schemathesis hooks of .ci/fuzz-api (loaded through SCHEMATHESIS_HOOKS)."""

import hashlib
import json
import re

import schemathesis

# The daemon's rule for Idempotency-Key (the document's `pattern`).
_KEY = re.compile(r"[!-~]([\t -~]*[!-~])?")


@schemathesis.hook
def before_call(context, case, kwargs):
    """Derive the Idempotency-Key from the request.

    Schemathesis reuses a generated key (often "0") across many requests; the daemon
    rightly answers 422 `idempotency_key_reused` to nearly all of them, so the fuzzing
    would hardly reach the write logic. With the request's fingerprint appended, the same
    request keeps its key (and exercises the stored-answer replay) and any other request
    gets a key of its own. Keys the daemon refuses are left as generated, so the 422 for a
    bad key is exercised too.
    """
    headers = case.headers
    if not headers:
        return
    key = headers.get("Idempotency-Key")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        return
    request = [case.method, case.path, case.path_parameters, case.query, case.body]
    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
    headers["Idempotency-Key"] = f"{key[:200]}-{digest[:16]}"


@schemathesis.hook
def map_query(context, query):
    """Long polls of the change feed last at most 1 s here.

    `GET /api/inventory/changes?wait=N` holds the request up to N (≤ 30) seconds when
    nothing new comes; at that pace a few hundred cases would take the whole time budget.
    One second still exercises the wait and its deadline.
    """
    if query and isinstance(query.get("wait"), (int, str)):
        try:
            if int(query["wait"]) > 1:
                query["wait"] = 1
        except ValueError:
            pass
    return query
