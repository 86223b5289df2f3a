"""What the OpenAPI schema says beyond what drf-spectacular reads from the serializers:
every error an operation can answer, with its body, and the headers of the protocol.

`postprocess` runs last among `SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]`. For each
operation it asks the view that serves it what it can answer (the rules below, read off
`views.py`, `idempotency.py`, `preconditions.py`, `middleware.py` and `exceptions.py`), and
adds:

- the error responses, each with its body: `Error` (`{"detail"}`), `ValidationError`
  (`{"field": ["message", ...]}`), `IllegalStatusChange`, `AlreadyRecorded` and
  `IdempotencyKeyError`;
- the request headers `If-Match` (PUT, PATCH, DELETE: 412 when stale), `If-None-Match`
  (GET of one object: 304), `Idempotency-Key` (POST: 422 on reuse, 409 while running) and
  `X-Request-ID` (any);
- the response headers `ETag`, `Retry-After` (429), `WWW-Authenticate` (401),
  `Idempotent-Replayed` and `X-Request-ID` (every response).

428 is never answered (`If-Match` is optional), so it is not documented. An operation the
rules do not know is reported as a warning, which `spectacular --fail-on-warn` (a test, and
`make check`) turns into a failure.
"""

from drf_spectacular.drainage import warn

COMPONENT = "#/components/schemas/"
HEADER = "#/components/headers/"


def ref(name):
    return {"$ref": COMPONENT + name}


STRINGS = {"type": "array", "items": {"type": "string"}}

SCHEMAS = {
    "Error": {
        "type": "object",
        "description": "An error that is not about one field: `detail` says what went wrong, in the "
        "language of `Accept-Language`.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
        "additionalProperties": False,
    },
    "ValidationError": {
        "type": "object",
        "description": "Bad input (400): each field that is wrong, with what is wrong with it; errors not tied "
        "to one field under `non_field_errors`. An unknown field is refused here too.",
        "properties": {"non_field_errors": {**STRINGS, "description": "Errors not tied to one field."}},
        "additionalProperties": ref("FieldErrors"),
    },
    "FieldErrors": {
        "description": "What is wrong with one field: its messages; for a list of objects (`participants`, "
        "`transfers`...), one `ItemErrors` per item in order (empty for a good one); for a list of values, "
        "the messages by index.",
        "anyOf": [{"type": "array", "items": ref("ItemErrors")}, STRINGS, ref("ItemErrors")],
    },
    "ItemErrors": {
        "type": "object",
        "description": "The errors of one item of a list: its fields (or, for a list of values, indexes) and "
        "their messages.",
        "additionalProperties": STRINGS,
    },
    "IllegalStatusChange": {
        "type": "object",
        "description": "The transition table does not allow this move (409); `allowed` lists the statuses the "
        "negotiation may move to now.",
        "properties": {
            "detail": {"type": "string"},
            "allowed": {"type": "array", "items": ref("NegotiationStatusEnum")},
        },
        "required": ["detail", "allowed"],
        "additionalProperties": False,
    },
    "AlreadyRecorded": {
        "type": "object",
        "description": "The same claim (group, metric, value, source and date) is already recorded (409); "
        "`existing` is its id. Nothing was recorded twice.",
        "properties": {"detail": {"type": "string"}, "existing": {"type": "string", "format": "uuid"}},
        "required": ["detail", "existing"],
        "additionalProperties": False,
    },
    "IdempotencyKeyError": {
        "type": "object",
        "description": "A problem with the `Idempotency-Key` header: not 1 to 255 characters (400), the "
        "request with this key still running (409: retry later), or the key used with a different "
        "request (422).",
        "properties": {"detail": {"type": "string"}, "idempotency_key": STRINGS},
        "required": ["detail", "idempotency_key"],
        "additionalProperties": False,
    },
}

HEADERS = {
    "X-Request-ID": {
        "description": "The request's id: the caller's own `X-Request-ID` when sane (8 to 64 of `A-Za-z0-9._-`), "
        "else a new one. The audit trail records it: quote it when asking about a request.",
        "required": True,
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": "The object's version. Send it back as `If-Match` on PUT, PATCH or DELETE (412 when it is "
        "stale), or as `If-None-Match` on a GET (304 when nothing changed). Absent from a replayed response.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before the request is accepted again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "WWW-Authenticate": {
        "description": '`Bearer realm="api"`.',
        "required": True,
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response to an earlier request with the same "
        "`Idempotency-Key` (nothing was done again).",
        "schema": {"type": "string", "enum": ["true"]},
    },
}

REQUEST_HEADERS = {
    "If-Match": {
        "description": "The `ETag` you hold: if the object changed since, nothing is changed and the answer is 412. "
        "Optional (without it the write is unconditional); `*` matches any version.",
        "schema": {"type": "string"},
    },
    "If-None-Match": {
        "description": "The `ETag` you hold: 304, without a body, when the object has not changed since.",
        "schema": {"type": "string"},
    },
    "Idempotency-Key": {
        "description": "Makes the POST safe to retry: repeated with the same body within 24 hours, the first "
        "response is returned (`Idempotent-Replayed: true`) and nothing is done again; with another "
        "body, 422; while the first is still running, 409.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    },
    "X-Request-ID": {
        "description": "Your id for this request (8 to 64 of `A-Za-z0-9._-`), echoed in the response and kept in "
        "the audit trail; another value is replaced by a new id.",
        "schema": {"type": "string"},
    },
}

WEBHOOK_HEADERS = {
    "webhook-id": "The message id (`msg_...`): the same on every retry of one delivery; de-duplicate on it.",
    "webhook-timestamp": "When this attempt was signed, in seconds since the epoch; refuse one too far from now.",
    "webhook-signature": "`v1,` + base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, keyed with "
    "the base64 part of the subscription's `whsec_` secret (Standard Webhooks).",
}

DESCRIPTIONS = {
    "304": "Not modified: the `If-None-Match` sent names the current version. No body.",
    "400 list": "Bad input: a bad filter value, `page_size` or cursor.",
    "400 write": "Bad input: a missing or invalid field, an unknown field (refused, not ignored), a body that is not "
    "valid JSON, or an `Idempotency-Key` that is not 1 to 255 characters.",
    "400 update": "Bad input: a missing or invalid field, an unknown field (refused, not ignored), or a body that is "
    "not valid JSON.",
    "400 acknowledge": "An `Idempotency-Key` that is not 1 to 255 characters.",
    "401": "No token, or an unknown, revoked or expired one.",
    "403": "Not allowed: a read-only client writing, a party not taking part (or only observing), what another "
    "party recorded, a staff decision, or a staff login without the permission. Nothing was written.",
    "404": "It does not exist, or the caller may not see it (or what it hangs off): the two are indistinguishable.",
    "412": "`If-Match` no longer matches: the object changed since you read it. Nothing was changed; read it "
    "again and decide.",
    "413": "The request body is over the size limit (1 MiB by default).",
    "415": "The body is not JSON (send `Content-Type: application/json`).",
    "422": "This `Idempotency-Key` was used with a different request.",
    "429": "Too many requests: wait `Retry-After` seconds.",
}

SUCCESS = {"200": "OK.", "201": "Created.", "204": "Done; no body."}

#: POSTs whose 409 can carry a body of their own, beyond the Idempotency-Key's and a
#: concurrent write's (`exceptions.exception_handler`).
CREATE_CONFLICTS = {
    "exchanges.api.views.StatusChangeViewSet": (
        "IllegalStatusChange",
        "an illegal status change (`allowed` lists the legal ones)",
    ),
    "exchanges.api.views.ReportedFigureViewSet": ("AlreadyRecorded", "a claim already recorded (`existing` names it)"),
}

#: DELETEs refused with 409 while something keeps the record: view -> why.
IN_USE = "still referred to by other records"
DELETES_REFUSED_IN_USE = {
    "exchanges.api.views.PartyViewSet": IN_USE,
    "exchanges.api.views.DetaineeGroupViewSet": IN_USE,
    "exchanges.api.views.ReportedFigureViewSet": IN_USE,
    "tracker.api.views.WebhookSubscriptionViewSet": IN_USE,
    "exchanges.api.views.NegotiationViewSet": "it has a recorded history (status changes, events or handovers), "
    "which is kept: close it with a final status",
}


def lib_doc_excludes():
    """drf-spectacular's own list, and the project's mixins and base views: their docstrings
    describe the code, not a resource, and must not become every component's description."""
    from drf_spectacular.plumbing import get_lib_doc_excludes

    from .serializers.fields import StrictFieldsMixin, WholeItemMixin
    from .views import NegotiationChildViewSet, RecordViewSet

    return [*get_lib_doc_excludes(), StrictFieldsMixin, WholeItemMixin, RecordViewSet, NegotiationChildViewSet]


def _name(view):
    return f"{type(view).__module__}.{type(view).__name__}"


class Operation:
    """What one operation (view and method) can answer, from the rules in the module docstring."""

    def __init__(self, view, method):
        from .changes import ChangeFeedView
        from .views import RecordViewSet

        self.view, self.method = view, method.upper()
        action = getattr(view, "action", None)
        record = isinstance(view, RecordViewSet)
        nested = record and type(view).require_sight is not RecordViewSet.require_sight
        self.errors = {}  # status -> [schema names], most specific first
        self.etag = set()  # statuses whose response carries an ETag
        self.request_headers = ["X-Request-ID"]
        self.replayable = False
        self.known = True
        self.kind = None  # list, write (a create), update, acknowledge: which 400 it is

        if self.method == "GET":
            if action == "list" or isinstance(view, ChangeFeedView) or action == "deliveries":
                self.errors["400"] = ["ValidationError"]  # filters, cursor, page_size
                self.kind = "list"
                if nested or action == "deliveries":
                    self.errors["404"] = ["Error"]  # what the list hangs off is out of sight
            elif action == "retrieve":
                self.errors["404"] = ["Error"]
                if record:  # RecordViewSet.retrieve: ETag, If-None-Match
                    self.request_headers.append("If-None-Match")
                    self.etag |= {"200", "304"}
            elif _name(view) == "exchanges.api.views.me":
                self.errors["404"] = ["Error"]  # a staff login is not an API client
            else:
                self.known = False
        elif self.method == "POST" and (record and action == "create" or action == "acknowledge"):
            # idempotency.run: 400 (bad key), 404 (a replay of what is now out of sight,
            # or what the POST hangs off), 409 (still running), 422 (reused).
            self.request_headers.append("Idempotency-Key")
            self.replayable = True
            self.kind = "write" if action == "create" else "acknowledge"
            if action == "create":
                conflict = CREATE_CONFLICTS.get(_name(view))
                self.errors["400"] = ["IdempotencyKeyError", "Error", "ValidationError"]
                self.errors["409"] = [*([conflict[0]] if conflict else []), "IdempotencyKeyError", "Error"]
                self.errors["413"] = ["Error"]
                self.errors["415"] = ["Error"]
                self.etag.add("201")
            else:  # no body to parse or validate
                self.errors["400"] = ["IdempotencyKeyError"]
                self.errors["409"] = ["IdempotencyKeyError"]
            self.errors["404"] = ["Error"]
            self.errors["422"] = ["IdempotencyKeyError"]
        elif self.method in ("PUT", "PATCH") and record:
            self.request_headers.append("If-Match")
            self.kind = "update"
            # get_object_for_write: 404, then 412; a body (400, 413, 415); a concurrent clash (409).
            for status, names in (("400", ["Error", "ValidationError"]), ("404", ["Error"]), ("409", ["Error"]),
                                  ("412", ["Error"]), ("413", ["Error"]), ("415", ["Error"])):  # fmt: skip
                self.errors[status] = names
            self.etag.add("200")
        elif self.method == "DELETE" and record:
            self.request_headers.append("If-Match")
            self.errors.update({"404": ["Error"], "412": ["Error"]})
            if _name(view) in DELETES_REFUSED_IN_USE:
                self.errors["409"] = ["Error"]
        else:
            self.known = False
        for status in ("401", "403", "429"):  # authentication, policy, rate limit: every operation
            self.errors[status] = ["Error"]

    def conflict_description(self):
        parts = []
        conflict = CREATE_CONFLICTS.get(_name(self.view)) if self.method == "POST" else None
        if conflict:
            parts.append(conflict[1])
        if _name(self.view) in DELETES_REFUSED_IN_USE and self.method == "DELETE":
            parts.append(DELETES_REFUSED_IN_USE[_name(self.view)])
        if "IdempotencyKeyError" in self.errors.get("409", []):
            parts.append("a request with the same `Idempotency-Key` still running (retry later)")
        if "Error" in self.errors.get("409", []) and self.method != "DELETE":
            parts.append("a clash with a concurrent write (retry it)")
        return "Conflict: " + "; ".join(parts) + ". Nothing was written."

    def description(self, status):
        if status == "409":
            return self.conflict_description()
        if status == "400":
            return DESCRIPTIONS[f"400 {self.kind}"]
        return DESCRIPTIONS[status]


def _body(names):
    if len(names) == 1:
        return ref(names[0])
    return {"oneOf": [ref(name) for name in names]}


def _response_headers(status, operation):
    headers = {"X-Request-ID": {"$ref": HEADER + "X-Request-ID"}}
    if status in operation.etag:
        headers["ETag"] = {"$ref": HEADER + "ETag"}
    if status == "429":
        headers["Retry-After"] = {"$ref": HEADER + "Retry-After"}
    if status == "401":
        headers["WWW-Authenticate"] = {"$ref": HEADER + "WWW-Authenticate"}
    if operation.replayable and status.startswith("2"):
        headers["Idempotent-Replayed"] = {"$ref": HEADER + "Idempotent-Replayed"}
    return headers


def document(schema_operation, operation):
    responses = schema_operation.setdefault("responses", {})
    if "304" in operation.etag:
        responses["304"] = {"description": DESCRIPTIONS["304"]}
    for status, names in operation.errors.items():
        responses[status] = {
            "description": operation.description(status),
            "content": {"application/json": {"schema": _body(names)}},
        }
    for status, response in responses.items():
        response["headers"] = {**response.get("headers", {}), **_response_headers(status, operation)}
        if not response.get("description"):
            response["description"] = SUCCESS.get(status, "")
    schema_operation["responses"] = dict(sorted(responses.items()))
    parameters = schema_operation.setdefault("parameters", [])
    for name in operation.request_headers:
        parameters.append({"in": "header", "name": name, "required": False, **REQUEST_HEADERS[name]})


def _endpoints(generator):
    """(path, method, view) of every operation, as `SchemaGenerator.parse` sees them."""
    for path, _regex, method, callback in generator.endpoints or []:
        view = generator.create_view(callback, method)
        yield generator.coerce_path(path, method, view), method, view


def _named_enums(result):
    """Filters' choices as the named enum components they are (one enum per vocabulary in a
    generated client, not one per query parameter)."""
    schemas = result["components"]["schemas"]
    by_values = {
        frozenset(schema["enum"]): name
        for name, schema in schemas.items()
        if isinstance(schema.get("enum"), list) and schema.get("type") == "string" and len(schema["enum"]) > 1
    }
    for item in result.get("paths", {}).values():
        for schema_operation in item.values():
            for parameter in schema_operation.get("parameters", []):
                schema = parameter.get("schema", {})
                target = schema["items"] if schema.get("type") == "array" and "items" in schema else schema
                name = by_values.get(frozenset(target.get("enum", ())))
                if name and target.get("type") == "string":
                    target.clear()
                    target["$ref"] = COMPONENT + name


def _references(node, found):
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str) and target.startswith(COMPONENT):
            found.add(target[len(COMPONENT) :])
        for value in node.values():
            _references(value, found)
    elif isinstance(node, list):
        for value in node:
            _references(value, found)
    return found


def _null_as_3_1(result):
    """`nullable: true` is OpenAPI 3.0's; 3.1 (JSON Schema) spells it `type: [..., "null"]`.
    drf-spectacular converts what it builds, not schemas handed to it whole (DRF's
    pagination schema)."""
    pending = [result]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "nullable" in node and not isinstance(node["nullable"], dict):
                if node.pop("nullable") is True:
                    if isinstance(node.get("type"), str):
                        node["type"] = [node["type"], "null"]
                    elif isinstance(node.get("type"), list) and "null" not in node["type"]:
                        node["type"].append("null")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)


def _prune(result):
    """Drop schema components nothing reaches (drf-spectacular registers `ActorRequest` and
    `ProgressRequest` for read-only fields of request bodies and never uses them): a
    generated client would carry them as dead classes."""
    schemas = result["components"]["schemas"]
    roots = {key: value for key, value in result.items() if key != "components"}
    roots["components"] = {key: value for key, value in result["components"].items() if key != "schemas"}
    used = frontier = _references(roots, set())
    while frontier:
        found = set()
        for name in frontier:
            _references(schemas.get(name, {}), found)
        frontier = found - used
        used = used | frontier
    for name in set(schemas) - used:
        del schemas[name]


def _webhook_headers(result):
    for item in result.get("webhooks", {}).values():
        for schema_operation in item.values():
            schema_operation["parameters"] = [
                {
                    "in": "header",
                    "name": name,
                    "required": True,
                    "description": description,
                    "schema": {"type": "string"},
                }
                for name, description in WEBHOOK_HEADERS.items()
            ]


#: Properties a response may leave out though drf-spectacular marks every read-only field
#: required: the secret of a webhook subscription is in the creating response only, and a
#: replay of the same `Idempotency-Key` answers without it (it is never stored).
SOMETIMES_ABSENT = {"WebhookSubscriptionCreated": ("secret",)}


def _sometimes_absent(result):
    schemas = result["components"]["schemas"]
    for name, properties in SOMETIMES_ABSENT.items():
        schema = schemas.get(name)
        if schema is None:
            continue
        schema["required"] = [prop for prop in schema.get("required", []) if prop not in properties]


SENT_BACK = (
    " Unknown fields are refused (400). Fields the tracker sets (`id`, timestamps, ...) may "
    "also be sent back as read: they are ignored, or refused with 400 when they move only "
    "through their own endpoint (such as `status`) and differ."
)


def _closed_requests(result):
    """Request bodies refuse fields the resource does not have (400 "Unknown field."), so
    each says `additionalProperties: false`. The fields the tracker sets, which a client
    may send back as read, are said in words rather than listed: listed, a generator
    would take them for fields the tracker reads."""
    for name, schema in result["components"]["schemas"].items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
            schema["description"] = (schema.get("description", "") + SENT_BACK).strip()


def postprocess(result, generator, request, public, **kwargs):
    """The POSTPROCESSING_HOOKS entry (after drf-spectacular's enum naming)."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(SCHEMAS)
    components["headers"] = dict(HEADERS)
    paths = result.get("paths", {})
    for path, method, view in _endpoints(generator):
        schema_operation = paths.get(path, {}).get(method.lower())
        if schema_operation is None:
            continue
        operation = Operation(view, method)
        if not operation.known:
            warn(f"{method} {path}: exchanges/api/schema.py does not know what it answers; add it to the rules.")
        document(schema_operation, operation)
    _named_enums(result)
    _webhook_headers(result)
    _sometimes_absent(result)
    _closed_requests(result)
    _null_as_3_1(result)
    _prune(result)
    return result
