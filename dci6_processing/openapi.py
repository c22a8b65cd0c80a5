"""The panel's own API description, and how the route table measures up against it.

Every DCImanager 6 instance publishes Swagger UI at `https://<host>/swagger/`; its initializer
lists one document per service ("DCI back", "IPmanager", auth ...). `discover()` reads that
page and fetches the documents; `load_document()` reads one (OpenAPI 3 or Swagger 2, JSON or
YAML) an admin saved from a browser. `check_routes()` compares every route of the table with
them: the path (by shape: slot names are ignored, `servers`/`basePath` resolved), the method,
each body field we send (present, type, enum, and the document's required fields we do not
send) and each answer field our models read (present, type, enum). A route that differs gets
its closest candidates in the documents and, when one fits, a routes.toml override to paste.

Only GETs of documentation pages are made here: nothing that changes the panel's state.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from dci6_processing.dci.routes import DEFAULT_TABLE, METHODS, Field, Route, RouteTable

Verdict = Literal["matches", "differs", "absent"]
Fetch = Callable[[str], tuple[int, str, bytes]]  # url -> (HTTP status, content type, body)

SWAGGER_PAGE = "/swagger/"
_HTTP_METHODS = ("get", "post", "put", "patch", "delete")
_SLOT = re.compile(r"\{[^}/]*\}")
_SCRIPT_SRC = re.compile(r"""<script[^>]*\bsrc\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
# a key of the Swagger UI config, bare (`urls:`) or quoted as JSON (`"urls":`), also when the
# JSON sits escaped inside a JavaScript string (`JSON.parse("{\\"urls\\": ...}")`)
_KEY_END = r"""\\?["']?\s*:\s*"""
_VALUE = r"""\\?["']([^"'\\]+)\\?["']"""
_URLS_BLOCK = re.compile(r"\burls" + _KEY_END + r"\[(.*?)\]", re.DOTALL)
_ENTRY = re.compile(r"""\{[^{}]*\}""", re.DOTALL)
_URL = re.compile(r"\burl" + _KEY_END + _VALUE)
_NAME = re.compile(r"\bname" + _KEY_END + _VALUE)
_CONFIG_URL = re.compile(r"\bconfigUrl" + _KEY_END + _VALUE)
_API_PREFIX = re.compile(r"/api/[^/]+/[^/]+")
MAX_REF_DEPTH = 32


class DescriptionError(Exception):
    """The API description could not be found or read; the message says why."""


# --- documents -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schema:
    """A JSON schema node inside one document, with `$ref`s resolved against that document."""

    root: Mapping[str, Any]
    node: Any

    def resolved(self, depth: int = 0) -> Mapping[str, Any]:
        """The node with its `$ref` followed and its allOf/oneOf/anyOf merged; a chain of
        references or compositions deeper than MAX_REF_DEPTH (a cycle) ends as {}."""
        node = self.node
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            node = _pointer(self.root, node["$ref"])
            depth += 1
            if depth > MAX_REF_DEPTH:
                return {}
        if not isinstance(node, Mapping):
            return {}
        parts = [node]
        for key in ("allOf", "oneOf", "anyOf"):
            for sub in node.get(key) or ():
                parts.append(Schema(self.root, sub).resolved(depth + 1))
        if len(parts) == 1:
            return node
        merged: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        required: set[str] = set()
        for part in parts:
            merged.update({k: v for k, v in part.items() if k not in ("allOf", "oneOf", "anyOf")})
            properties.update(part.get("properties") or {})
            if part is node or "allOf" in node:
                required.update(part.get("required") or ())
        merged["properties"], merged["required"] = properties, sorted(required)
        return merged

    def child(self, node: Any) -> Schema:
        return Schema(self.root, node)

    @property
    def properties(self) -> dict[str, Schema]:
        props = self.resolved().get("properties") or {}
        return {str(name): self.child(sub) for name, sub in props.items()}

    @property
    def required(self) -> frozenset[str]:
        return frozenset(str(name) for name in self.resolved().get("required") or ())

    @property
    def type(self) -> str | None:
        raw = self.resolved().get("type")
        if isinstance(raw, list):  # OpenAPI 3.1: ["string", "null"]
            raw = next((t for t in raw if t != "null"), None)
        if raw is None and "properties" in self.resolved():
            return "object"
        return str(raw) if raw is not None else None

    @property
    def items(self) -> Schema | None:
        items = self.resolved().get("items")
        return self.child(items) if items is not None else None

    @property
    def enum(self) -> tuple[str, ...] | None:
        """Declared values: of the field, or of its items for an array."""
        node = self.resolved()
        values = node.get("enum")
        if values is None and self.items is not None:
            values = self.items.resolved().get("enum")
        return tuple(str(v) for v in values if v is not None) if values else None

    def walk(self, dotted: str) -> Schema | None:
        """The node of `a.b[].c` (routes.Field names), or None when the document lacks it."""
        node: Schema | None = self
        for part in dotted.split("."):
            is_array = part.endswith("[]")
            name = part.removesuffix("[]")
            node = node.properties.get(name) if node is not None else None
            if node is not None and is_array:
                node = node.items
            if node is None:
                return None
        return node


def _pointer(root: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        return {}  # a reference into another file: not followed
    node: Any = root
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or token not in node:
            return {}
        node = node[token]
    return node


@dataclass(frozen=True)
class DocOperation:
    """One operation of a document: `path` is full (`/api/dci/v3/...`) when the document's
    servers/basePath (or its URL) tell the prefix; otherwise `prefixed` is False."""

    method: str
    path: str
    body: Schema | None
    answer: Schema | None
    source: str
    prefixed: bool = True

    @property
    def shape(self) -> str:
        return shape(self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class ApiDocument:
    title: str
    source: str
    version: str  # "OpenAPI 3.0.3", "Swagger 2.0"
    operations: tuple[DocOperation, ...]


def shape(path: str) -> str:
    """A path template with its slot names dropped: `/a/{id}/b` -> `/a/{}/b`."""
    return _SLOT.sub("{}", path.rstrip("/") or "/")


def load_document(data: bytes | str, source: str) -> ApiDocument:
    """One OpenAPI 3 / Swagger 2 document, JSON or YAML."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = text.removeprefix("\ufeff")  # a byte order mark, as some editors save files
    if text.lstrip()[:1] == "<":
        raise DescriptionError(f"{source}: an HTML page, not an OpenAPI or Swagger document "
                               "(save the JSON document the Swagger UI page lists, not the "
                               "page itself)")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = _load_yaml(text, source)
    if not isinstance(parsed, Mapping) or not isinstance(parsed.get("paths"), Mapping):
        raise DescriptionError(f"{source}: not an OpenAPI or Swagger document (no 'paths')")
    title = str((parsed.get("info") or {}).get("title") or source)
    if "swagger" in parsed:
        prefixes = [str(parsed.get("basePath") or "")]
        version = f"Swagger {parsed['swagger']}"
    elif "openapi" in parsed:
        prefixes = _server_paths(parsed.get("servers"))
        version = f"OpenAPI {parsed['openapi']}"
    else:
        raise DescriptionError(f"{source}: neither 'openapi' nor 'swagger' is set")
    url_prefix = _API_PREFIX.search(urlsplit(source).path)
    operations: list[DocOperation] = []
    for raw_path, item in parsed["paths"].items():
        if not isinstance(item, Mapping):
            continue
        item = Schema(parsed, item).resolved()
        path_prefixes = _server_paths(item["servers"]) if "servers" in item else prefixes
        for method in _HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op, Mapping):
                continue
            params = [*(item.get("parameters") or ()), *(op.get("parameters") or ())]
            body = _body_schema(parsed, op, params)
            answer = _answer_schema(parsed, op)
            for prefix in path_prefixes:
                full = _join(prefix, str(raw_path))
                prefixed = full.startswith("/api/")
                if not prefixed and url_prefix is not None:
                    full, prefixed = _join(url_prefix.group(0), str(raw_path)), True
                operations.append(DocOperation(method.upper(), full, body, answer, title,
                                               prefixed))
    return ApiDocument(title, source, version, tuple(operations))


def _load_yaml(text: str, source: str) -> Any:
    """YAML read as OpenAPI means it (YAML 1.2, its recommendation): only true/false are
    booleans, so an unquoted `enum: [on, off]` stays the strings PyYAML's 1.1 rules would
    turn into True/False."""
    import yaml  # PyYAML, only for YAML documents

    class Yaml12Loader(yaml.SafeLoader):
        pass

    bool_tag = "tag:yaml.org,2002:bool"
    Yaml12Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != bool_tag]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Yaml12Loader.add_implicit_resolver(
        bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    try:
        return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise DescriptionError(f"{source}: neither JSON nor YAML ({exc})") from None


def _server_paths(servers: Any) -> list[str]:
    paths: list[str] = []
    for server in servers or ():
        if not isinstance(server, Mapping) or not isinstance(server.get("url"), str):
            continue
        url = server["url"]
        for name, variable in (server.get("variables") or {}).items():
            default = variable.get("default", "") if isinstance(variable, Mapping) else ""
            url = url.replace("{" + str(name) + "}", str(default))
        paths.append(urlsplit(url).path if "//" in url else url)
    return paths or [""]


def _join(prefix: str, path: str) -> str:
    return "/" + "/".join(part for part in f"{prefix}/{path}".split("/") if part)


def _body_schema(root: Mapping[str, Any], op: Mapping[str, Any],
                 params: Sequence[Any]) -> Schema | None:
    request = op.get("requestBody")
    if request is not None:  # OpenAPI 3
        request = Schema(root, request).resolved()
        return _json_content(root, request.get("content"))
    form: dict[str, Any] = {}
    required: list[str] = []
    for param in params:  # Swagger 2: an `in: body` parameter, or form fields
        param = Schema(root, param).resolved()
        if param.get("in") == "body" and "schema" in param:
            return Schema(root, param["schema"])
        if param.get("in") == "formData" and isinstance(param.get("name"), str):
            form[param["name"]] = {k: v for k, v in param.items() if k not in ("in", "name")}
            if param.get("required"):
                required.append(param["name"])
    if form:
        return Schema(root, {"type": "object", "properties": form, "required": required})
    return None


def _answer_schema(root: Mapping[str, Any], op: Mapping[str, Any]) -> Schema | None:
    responses = op.get("responses") or {}
    for code, raw in sorted(responses.items(), key=lambda item: str(item[0])):
        if not str(code).startswith("2"):
            continue
        answer = Schema(root, raw).resolved()
        if "schema" in answer:  # Swagger 2
            return Schema(root, answer["schema"])
        found = _json_content(root, answer.get("content"))
        if found is not None:
            return found
    return None


def _json_content(root: Mapping[str, Any], content: Any) -> Schema | None:
    """The schema of the JSON media type, or of `*/*` (how some generators declare a JSON
    body) when no JSON one is listed."""
    if not isinstance(content, Mapping):
        return None
    for wanted in (lambda media: "json" in media, lambda media: media == "*/*"):
        for media, entry in content.items():
            if wanted(str(media)) and isinstance(entry, Mapping) and "schema" in entry:
                return Schema(root, entry["schema"])
    return None


# --- discovery -------------------------------------------------------------------------------


@dataclass
class Discovery:
    documents: list[ApiDocument] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def discover(base_url: str, fetch: Fetch) -> Discovery:
    """Every document the panel's Swagger UI page lists. Raises DescriptionError when the
    page or its list cannot be read; a listed document that fails is a problem, not fatal."""
    page_url = base_url.rstrip("/") + SWAGGER_PAGE
    page = _fetch_text(fetch, page_url)
    texts = [page]
    for src in _SCRIPT_SRC.findall(page):
        if "initializer" in src or "config" in src:
            texts.append(_fetch_text(fetch, urljoin(page_url, src)))
    entries: list[tuple[str, str]] = []
    for text in texts:
        entries += _listed_documents(text, page_url, fetch)
    if not entries:
        raise DescriptionError(f"{page_url} lists no API documents (no 'urls' or 'url' in "
                               "its Swagger UI configuration)")
    found = Discovery()
    seen: set[str] = set()
    for name, url in entries:
        if url in seen:
            continue
        seen.add(url)
        try:
            found.documents.append(load_document(_fetch(fetch, url), url))
        except DescriptionError as exc:
            found.problems.append(f"{name}: {exc}")
    if not found.documents:
        raise DescriptionError(f"none of the API documents {page_url} lists could be read ("
                               + "; ".join(found.problems) + ")")
    return found


def _listed_documents(text: str, page_url: str, fetch: Fetch) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    block = _URLS_BLOCK.search(text)
    if block is not None:
        for entry in _ENTRY.findall(block.group(1)):
            url, name = _URL.search(entry), _NAME.search(entry)
            if url is not None:
                entries.append((name.group(1) if name else url.group(1),
                                urljoin(page_url, url.group(1))))
    for config in _CONFIG_URL.findall(text):
        config_url = urljoin(page_url, config)
        try:
            data = json.loads(_fetch(fetch, config_url))
        except ValueError:
            raise DescriptionError(f"{config_url}: the Swagger UI config is not JSON") from None
        listed = data.get("urls") if isinstance(data, Mapping) else None
        for entry in listed or ([data] if isinstance(data, Mapping) and "url" in data else []):
            if isinstance(entry, Mapping) and isinstance(entry.get("url"), str):
                entries.append((str(entry.get("name") or entry["url"]),
                                urljoin(config_url, entry["url"])))
    if not entries and block is None:
        single = _URL.search(text)
        if single is not None and not single.group(1).endswith(".js"):
            entries.append((single.group(1), urljoin(page_url, single.group(1))))
    return entries


def _fetch(fetch: Fetch, url: str) -> bytes:
    status, _, body = fetch(url)
    if status != 200:
        raise DescriptionError(f"{url} answered HTTP {status}")
    return body


def _fetch_text(fetch: Fetch, url: str) -> str:
    return _fetch(fetch, url).decode("utf-8", errors="replace")


# --- the check -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteCheck:
    """One row of doctor's table."""

    route: Route
    verdict: Verdict
    differences: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()
    override: str = ""  # routes.toml text that would make the route match, when one fits
    documented_as: str = ""  # the document operation the route was compared with

    @property
    def summary(self) -> str:
        if self.verdict == "differs":
            return "differs: " + "; ".join(self.differences)
        return self.verdict

    def as_json(self) -> dict[str, Any]:
        return {
            "route": self.route.name,
            "mark": self.route.confirmation.value.upper(),
            "method": self.route.method,
            "path": self.route.pattern,
            "overridden": self.route.overridden,
            "verdict": self.verdict,
            "differences": list(self.differences),
            "documented_as": self.documented_as or None,
            "candidates": list(self.candidates),
            "override": self.override or None,
        }


def check_routes(table: RouteTable, documents: Sequence[ApiDocument]) -> list[RouteCheck]:
    operations = [op for document in documents for op in document.operations]
    checks = []
    for route in table.values():
        # an operation another route of the table is documented as is no candidate here
        others = [r for r in table.values() if r is not route]
        free = [op for op in operations
                if not any(op.method == r.method and _same_path(r, op) for r in others)]
        checks.append(check_route(route, free))
    return checks


def check_route(route: Route, operations: Sequence[DocOperation]) -> RouteCheck:
    """`route` against the document operations it may be (those of other routes left out)."""
    same_path = [op for op in operations if _same_path(route, op)]
    exact = [op for op in same_path if op.method == route.method]
    if exact:
        op = exact[0]
        differences, renames = _compare(route, op)
        if not differences:
            return RouteCheck(route, "matches", documented_as=str(op))
        return RouteCheck(route, "differs", tuple(differences),
                          override=_override(route, op, renames), documented_as=str(op))
    if same_path:
        methods = sorted({op.method for op in same_path})
        differences = [f"method: the document has {'/'.join(methods)} for this path, "
                       f"not {route.method}"]
        usable = [op for op in same_path if op.method in METHODS]
        if not usable:
            differences.append("an override cannot express that method")
            return RouteCheck(route, "differs", tuple(differences),
                              candidates=tuple(str(op) for op in same_path))
        op = usable[0]
        more, renames = _compare(route, op)
        return RouteCheck(route, "differs", tuple(differences + more),
                          candidates=tuple(str(op) for op in same_path),
                          override=_override(route, op, renames), documented_as=str(op))
    ranked = _closest(route, operations)
    for op in ranked:
        if op.method in METHODS and _slot_map(route, op) is not None:
            _, renames = _compare(route, op)
            return RouteCheck(route, "absent", candidates=tuple(str(c) for c in ranked),
                              override=_override(route, op, renames))
    return RouteCheck(route, "absent", candidates=tuple(str(c) for c in ranked))


def _same_path(route: Route, op: DocOperation) -> bool:
    if op.prefixed:
        return op.shape == shape(route.pattern)
    return op.shape == shape("/" + route.template)


def _compare(route: Route, op: DocOperation) -> tuple[list[str], dict[str, str]]:
    """The differences between the route's body and answer and the operation's, and the
    body renames (ours -> the document's) that would mend the body."""
    body, renames = _body_differences(route, op)
    return body + _answer_differences(route, op), renames


def _body_differences(route: Route, op: DocOperation) -> tuple[list[str], dict[str, str]]:
    current = dict(route.renames)
    sent = {current.get(f.name, f.name): f for f in route.body}
    if op.body is None:
        if sent:
            return [f"body: the document declares none; we send {', '.join(sorted(sent))}"], {}
        return [], {}
    documented = op.body.properties
    required = op.body.required
    differences: list[str] = []
    missing = [name for name in sent if name not in documented]
    unsent = [name for name in documented if name not in sent]
    renames = _pair(missing, unsent, sent, documented, required)
    for name, ours in sent.items():
        theirs = renames.get(ours.name)
        if name not in documented:
            hint = f" (the document has {theirs!r})" if theirs else ""
            differences.append(f"body field {name} is not in the document{hint}")
            continue
        differences += _field_differences(f"body field {name}", ours, documented[name])
    for name in sorted(required - set(sent)):
        if name not in renames.values():
            differences.append(f"body field {name} is required by the document; we do not "
                               "send it")
    return differences, {ours: theirs for ours, theirs in renames.items()}


def _pair(missing: Sequence[str], unsent: Sequence[str], sent: Mapping[str, Field],
          documented: Mapping[str, Schema], required: frozenset[str]) -> dict[str, str]:
    """Our body fields the document lacks, paired with fields it has that we do not send:
    same type, most similar name (ours name -> theirs)."""
    pairs: dict[str, str] = {}
    free = list(unsent)
    for name in missing:
        ours = sent[name]
        fitting = [c for c in free if _types_fit(ours.type, documented[c].type)]
        if not fitting:
            continue
        best = max(fitting, key=lambda c: (_similarity(name, c), c in required))
        only = len(missing) == 1 and len([c for c in fitting if c in required]) == 1
        if _similarity(name, best) >= 0.5 or (only and best in required):
            pairs[ours.name] = best
            free.remove(best)
    return pairs


def _similarity(a: str, b: str) -> float:
    a, b = a.lower(), b.lower()
    if a in b or b in a:
        return 0.9
    return difflib.SequenceMatcher(None, a, b).ratio()


def _answer_differences(route: Route, op: DocOperation) -> list[str]:
    if op.answer is None or not route.reads:
        return []  # an undocumented answer cannot be checked; not a difference
    root: Schema | None = op.answer
    if route.listing:
        listed = root.walk("list[]") if root is not None else None
        root = listed if listed is not None else root
    differences: list[str] = []
    for ours in route.reads:
        node = root.walk(ours.name) if root is not None else None
        if node is None:
            differences.append(f"answer field {ours.name} is not in the document")
            continue
        differences += _field_differences(f"answer field {ours.name}", ours, node)
    return differences


def _field_differences(label: str, ours: Field, theirs: Schema) -> list[str]:
    differences: list[str] = []
    their_type = theirs.type
    if ours.type != "any" and their_type is not None and not _types_fit(ours.type, their_type):
        differences.append(f"{label} is {their_type} in the document, not {ours.type}")
    enum = theirs.enum
    if ours.values and enum is not None:
        unlisted = [value for value in ours.values if value not in enum]
        if unlisted:
            differences.append(f"{label}: the document's values are {', '.join(enum)}; "
                               f"not {', '.join(unlisted)}")
    return differences


def _types_fit(ours: str, theirs: str | None) -> bool:
    if ours == "any" or theirs is None or ours == theirs:
        return True
    return ours == "integer" and theirs == "number"


def _tokens(path: str) -> set[str]:
    words = re.split(r"[/_.\-]+", _SLOT.sub("", path.removeprefix("/")))
    return {word for word in words if word and word != "api"}


def _closest(route: Route, operations: Sequence[DocOperation], limit: int = 3
             ) -> list[DocOperation]:
    """Operations most like the route: same resource, similar names, same method."""
    ours = _tokens(route.template)
    resource = route.template.split("/")[0]

    def score(op: DocOperation) -> float:
        theirs = _tokens(op.path.split(f"/{route.service}/{route.version}/", 1)[-1])
        overlap = len(ours & theirs) / max(len(ours | theirs), 1)
        same_resource = f"/{resource}" in op.path
        same_method = op.method == route.method
        return overlap + 0.3 * same_resource + 0.2 * same_method + 0.2 * difflib.SequenceMatcher(
            None, shape(route.pattern), op.shape).ratio()

    scored = sorted(((score(op), str(op), op) for op in operations), key=lambda t: (-t[0], t[1]))
    return [op for value, _, op in scored if value >= 0.6][:limit]


def _slot_map(route: Route, op: DocOperation) -> dict[str, str] | None:
    """The document's slot names -> ours, when the operation's slots fit one of the slot
    sets routes.toml accepts for the route (the shipped route's, whatever it is overridden
    to now: a per-port override may have to go back per server)."""
    shipped = DEFAULT_TABLE[route.name]
    accepted = shipped.allowed_slots()
    theirs = [slot[1:-1] for slot in _SLOT.findall(op.path)]
    for allowed in accepted:
        if set(theirs) == allowed:
            return {name: name for name in theirs}
    for ours in (route.placeholders, shipped.placeholders):
        if len(theirs) == len(ours) and frozenset(ours) in accepted:
            return dict(zip(theirs, ours, strict=True))
    for allowed in accepted:
        guessed = {name: _slot_guess(name, allowed) for name in theirs}
        if set(guessed.values()) == allowed and len(guessed) == len(allowed):
            return {k: v for k, v in guessed.items() if v is not None}
    return None


def _slot_guess(name: str, allowed: Iterable[str]) -> str | None:
    for slot in sorted(allowed):
        if slot.removesuffix("_id") in name.lower():
            return slot
    return None


def _override(route: Route, op: DocOperation, renames: Mapping[str, str]) -> str:
    """The routes.toml entry that makes the shipped route call `op`; "" when it would be the
    entry the route already has (nothing an override can change). For a route routes.toml
    already overrides, it replaces that entry: a bare `[route."name"]` restores the shipped
    route."""
    mapping = _slot_map(route, op)
    if mapping is None:
        return ""
    path = op.path if op.prefixed else f"/api/{route.service}/{route.version}{op.path}"
    path = _SLOT.sub(lambda m: "{" + mapping.get(m.group(0)[1:-1], m.group(0)[1:-1]) + "}", path)
    wanted = _entry(route.name, op.method, path, {**dict(route.renames), **renames})
    if wanted == _entry(route.name, route.method, route.pattern, dict(route.renames)):
        return ""
    return wanted


def _entry(name: str, method: str, path: str, body: Mapping[str, str]) -> str:
    """routes.toml text for route `name` calling `method path` with `body` renames, saying
    only what differs from the shipped route."""
    shipped = DEFAULT_TABLE[name]
    lines = [f'[route."{name}"]']
    if method != shipped.method:
        lines.append(f'method = "{method}"')
    if path != shipped.pattern:
        lines.append(f'path = "{path}"')
    renamed = {ours: theirs for ours, theirs in body.items() if ours != theirs}
    if renamed:
        pairs = ", ".join(f'{ours} = "{theirs}"' for ours, theirs in renamed.items())
        lines.append(f"body = {{ {pairs} }}")
    return "\n".join(lines)
