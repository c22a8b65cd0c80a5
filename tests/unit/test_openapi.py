"""openapi.py, reading: OpenAPI 3.x and Swagger 2 documents in JSON and YAML, `$ref`s,
servers / basePath prefixes, path shapes, and discovery through a panel's Swagger UI page."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from dci6_processing.openapi import (
    DescriptionError,
    DocOperation,
    Schema,
    discover,
    load_document,
    shape,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"
OK = {"200": {"description": "OK"}}


def openapi3(paths: Mapping[str, Any], *, servers: Any = ({"url": "/api/dci/v3"},),
             schemas: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"openapi": "3.0.3", "info": {"title": "DCI back", "version": "3"},
                           "paths": dict(paths), **extra}
    if servers is not None:
        doc["servers"] = list(servers)
    if schemas is not None:
        doc["components"] = {"schemas": dict(schemas)}
    return doc


def answering(schema: Any) -> dict[str, Any]:
    return {"get": {"responses": {"200": {"description": "OK", "content": {
        "application/json": {"schema": schema}}}}}}


def load(doc: Mapping[str, Any], source: str = "doc.json") -> list[DocOperation]:
    return list(load_document(json.dumps(doc), source).operations)


def only(doc: Mapping[str, Any], source: str = "doc.json") -> DocOperation:
    (operation,) = load(doc, source)
    return operation


def ops(doc: Mapping[str, Any], source: str = "doc.json") -> set[str]:
    return {str(op) for op in load(doc, source)}


# --- formats and versions ---------------------------------------------------------------------

@pytest.mark.parametrize(("name", "version", "title", "count", "one"), [
    ("dci-back.openapi3.json", "OpenAPI 3.0.3", "DCI back", 20,
     "DELETE /api/dci/v3/server/{id}/owner"),
    ("auth-v4.openapi3.yaml", "OpenAPI 3.0.1", "Auth v4", 3, "POST /api/auth/v4/public/token"),
    ("ipmanager.swagger2.json", "Swagger 2.0", "IPmanager", 2, "GET /api/ip/v3/ippool"),
    ("dci-back-differs.swagger2.yaml", "Swagger 2.0", "DCI back", 18, "POST /api/dci/v3/ip/{ip}"),
    ("dci-back-moved.openapi31.yaml", "OpenAPI 3.1.0", "DCI back", 20,
     "POST /api/dci/v3/switch/{switch_id}/port/{port_id}/enable"),
])
def test_each_fixture_reads_with_its_prefix(name: str, version: str, title: str, count: int,
                                            one: str) -> None:
    path = FIXTURES / name
    document = load_document(path.read_bytes(), str(path))
    assert (document.version, document.title, document.source) == (version, title, str(path))
    assert len(document.operations) == count
    assert one in {str(op) for op in document.operations}
    assert all(op.prefixed and op.path.startswith("/api/") for op in document.operations)


def test_the_same_document_in_json_and_yaml_reads_the_same() -> None:
    import yaml

    doc = json.loads((FIXTURES / "dci-back.openapi3.json").read_text())
    from_json = load_document(json.dumps(doc), "a.json")
    from_yaml = load_document(yaml.safe_dump(doc, sort_keys=False), "a.yaml")
    assert [(str(o), o.body and o.body.resolved(), o.answer and o.answer.resolved())
            for o in from_json.operations] == [
        (str(o), o.body and o.body.resolved(), o.answer and o.answer.resolved())
        for o in from_yaml.operations]


def test_yaml_is_read_as_yaml_1_2_so_on_and_off_stay_strings() -> None:
    # regression: PyYAML's YAML 1.1 rules made `enum: [on, off]` True/False, and doctor
    # reported the panel's power values as "True, False"
    text = (FIXTURES / "auth-v4.openapi3.yaml").read_text().replace(
        "confirmed: {type: boolean}",
        "confirmed: {type: boolean}\n        state: {type: string, enum: [on, off, yes, no]}\n"
        "        flag: {type: boolean, default: true}")
    token = next(op for op in load_document(text, "auth.yaml").operations
                 if op.path.endswith("/public/token"))
    assert token.answer is not None
    assert token.answer.walk("state").enum == ("on", "off", "yes", "no")
    assert token.answer.walk("flag").resolved()["default"] is True


def test_a_byte_order_mark_is_skipped() -> None:
    doc = json.dumps(openapi3({"/location": answering({"type": "object"})})).encode()
    document = load_document(b"\xef\xbb\xbf" + doc, "saved.json")
    assert [str(op) for op in document.operations] == ["GET /api/dci/v3/location"]


@pytest.mark.parametrize(("text", "message"), [
    ("<!DOCTYPE html><html>Swagger UI</html>", "an HTML page, not an OpenAPI or Swagger"),
    ('{"openapi": "3.0.0"}', r"not an OpenAPI or Swagger document \(no 'paths'\)"),
    ("[1, 2]", r"\(no 'paths'\)"),
    ('{"paths": {}}', "neither 'openapi' nor 'swagger' is set"),
    ("paths: {a: [unclosed", "neither JSON nor YAML"),
])
def test_what_is_not_a_document(text: str, message: str) -> None:
    with pytest.raises(DescriptionError, match=message) as caught:
        load_document(text, "saved.json")
    assert str(caught.value).startswith("saved.json: ")


# --- prefixes -----------------------------------------------------------------------------------

def test_servers_prefix_relative_absolute_with_variables_and_several() -> None:
    paths = {"/server": answering({"type": "object"})}
    assert ops(openapi3(paths)) == {"GET /api/dci/v3/server"}
    assert ops(openapi3(paths, servers=[{"url": "https://dci.example.com:1500/api/dci/v3/"}])) \
        == {"GET /api/dci/v3/server"}
    assert ops(openapi3(paths, servers=[{"url": "{scheme}://{host}/api/{service}/v3",
                                         "variables": {"scheme": {"default": "https"},
                                                       "host": {"default": "h"},
                                                       "service": {"default": "dci"}}}])) \
        == {"GET /api/dci/v3/server"}
    assert ops(openapi3(paths, servers=[{"url": "/api/dci/v3"}, {"url": "/api/dci/v4"}])) == {
        "GET /api/dci/v3/server", "GET /api/dci/v4/server"}


def test_a_path_items_own_servers_win() -> None:
    paths = {"/server": answering({}), "/ippool": {**answering({}), "servers": [
        {"url": "/api/ip/v3"}]}}
    assert ops(openapi3(paths)) == {"GET /api/dci/v3/server", "GET /api/ip/v3/ippool"}


def test_swagger2_base_path() -> None:
    doc = {"swagger": "2.0", "basePath": "/api/dci/v3/", "paths": {"/server/{id}": {"get": {
        "responses": OK}}}}
    assert ops(doc) == {"GET /api/dci/v3/server/{id}"}


def test_paths_that_carry_the_prefix_themselves() -> None:
    doc = openapi3({"/api/dci/v3/server": answering({})}, servers=None)
    assert ops(doc) == {"GET /api/dci/v3/server"}
    assert only(doc).prefixed


def test_no_prefix_in_the_document_is_taken_from_its_url() -> None:
    doc = openapi3({"/server": answering({})}, servers=[{"url": "/"}])
    op = only(doc, "https://dci.example.com/api/dci/v3/swagger.json")
    assert (str(op), op.prefixed) == ("GET /api/dci/v3/server", True)


def test_no_prefix_anywhere_is_marked_unprefixed() -> None:
    op = only(openapi3({"/server/{id}": answering({})}, servers=None), "saved.json")
    assert (op.path, op.prefixed, op.shape) == ("/server/{id}", False, "/server/{}")


def test_shape_drops_slot_names_and_a_trailing_slash() -> None:
    assert shape("/api/dci/v3/server/{server_id}/ip/") == "/api/dci/v3/server/{}/ip"
    assert shape("/api/dci/v3/switch/{switch}/port/{p}") == shape(
        "/api/dci/v3/switch/{switch_id}/port/{port_id}")
    assert shape("/") == "/"
    assert shape("/server/{id}") != shape("/server/configuration")


# --- $ref, bodies, answers ---------------------------------------------------------------------

def test_refs_to_bodies_parameters_and_responses() -> None:
    doc = openapi3(
        {"/server/{id}/ip": {"parameters": [{"$ref": "#/components/parameters/id"}], "post": {
            "requestBody": {"$ref": "#/components/requestBodies/IpAdd"},
            "responses": {"200": {"$ref": "#/components/responses/Ip"}}}}},
        schemas={"IpAdd": {"$ref": "#/components/schemas/IpAddBody"},  # a chain of two
                 "IpAddBody": {"type": "object", "required": ["family"], "properties": {
                     "family": {"type": "string"}, "ippool": {"type": "integer"}}},
                 "Ip": {"type": "object", "properties": {"id": {"type": "integer"}}}},
    )
    doc["components"].update({
        "parameters": {"id": {"name": "id", "in": "path", "required": True}},
        "requestBodies": {"IpAdd": {"content": {"application/json; charset=utf-8": {
            "schema": {"$ref": "#/components/schemas/IpAdd"}}}}},
        "responses": {"Ip": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Ip"}}}}},
    })
    op = only(doc)
    assert op.body is not None and op.answer is not None
    assert set(op.body.properties) == {"family", "ippool"}
    assert op.body.required == {"family"}
    assert op.body.properties["ippool"].type == "integer"
    assert op.answer.walk("id") is not None and op.answer.walk("id").type == "integer"  # type: ignore[union-attr]


def test_json_pointer_escapes_and_refs_not_followed() -> None:
    root = {"definitions": {"a/b": {"type": "integer"}, "c~d": {"type": "string"}}}
    assert Schema(root, {"$ref": "#/definitions/a~1b"}).type == "integer"
    assert Schema(root, {"$ref": "#/definitions/c~0d"}).type == "string"
    assert Schema(root, {"$ref": "other.json#/definitions/x"}).resolved() == {}
    assert Schema(root, {"$ref": "#/definitions/missing"}).resolved() == {}


def test_a_reference_cycle_ends_instead_of_recursing() -> None:
    # regression: an allOf that refers back to itself raised RecursionError (a traceback)
    doc = openapi3({"/server": answering({"$ref": "#/components/schemas/A"})}, schemas={
        "A": {"allOf": [{"$ref": "#/components/schemas/B"}],
              "properties": {"id": {"type": "integer"}}},
        "B": {"allOf": [{"$ref": "#/components/schemas/A"}]},
        "Loop": {"$ref": "#/components/schemas/Loop"},
    })
    answer = only(doc).answer
    assert answer is not None and set(answer.properties) == {"id"}
    assert Schema(doc, {"$ref": "#/components/schemas/Loop"}).resolved() == {}


def test_all_of_merges_properties_and_required_one_of_only_properties() -> None:
    root = {"definitions": {"Base": {"type": "object", "required": ["id"],
                                     "properties": {"id": {"type": "integer"}}}}}
    merged = Schema(root, {"allOf": [{"$ref": "#/definitions/Base"}, {
        "required": ["name"], "properties": {"name": {"type": "string"}}}]})
    assert set(merged.properties) == {"id", "name"}
    assert merged.required == {"id", "name"}
    either = Schema(root, {"oneOf": [{"$ref": "#/definitions/Base"}, {"type": "object"}]})
    assert set(either.properties) == {"id"} and either.required == frozenset()
    nullable = Schema(root, {"nullable": True, "allOf": [{"$ref": "#/definitions/Base"}]})
    assert nullable.type == "object" and nullable.walk("id") is not None


def test_types_of_3_1_and_implied_objects_and_enums_of_array_items() -> None:
    assert Schema({}, {"type": ["string", "null"]}).type == "string"
    assert Schema({}, {"type": ["null"]}).type is None
    assert Schema({}, {"properties": {"a": {}}}).type == "object"
    assert Schema({}, {}).type is None
    tags = Schema({}, {"type": "array", "items": {"type": "string", "enum": ["@user", None]}})
    assert tags.enum == ("@user",)
    assert Schema({}, {"type": "integer", "enum": [1, 2]}).enum == ("1", "2")


def test_walk_into_objects_and_arrays() -> None:
    server = Schema({}, {"type": "object", "properties": {
        "operation": {"type": "object", "properties": {"status": {"type": "string"}}},
        "ip": {"type": "array", "items": {"type": "object", "properties": {
            "family": {"type": "string", "enum": ["ipv4", "ipv6"]}}}},
        "name": {"type": "string"}}})
    assert server.walk("operation.status").type == "string"  # type: ignore[union-attr]
    assert server.walk("ip[].family").enum == ("ipv4", "ipv6")  # type: ignore[union-attr]
    assert server.walk("ip[]").type == "object"  # type: ignore[union-attr]
    for missing in ("operation.status_info", "name[]", "nothing.at.all", "ip[].id"):
        assert server.walk(missing) is None, missing


def test_swagger2_bodies_as_body_parameter_or_form_fields() -> None:
    doc = {"swagger": "2.0", "basePath": "/api/dci/v3",
           "parameters": {"body": {"name": "b", "in": "body", "schema": {
               "$ref": "#/definitions/Owner"}}},
           "definitions": {"Owner": {"type": "object", "properties": {"owner": {
               "type": "integer"}}}},
           "paths": {
               "/server/{id}/owner": {"post": {"parameters": [{"$ref": "#/parameters/body"}],
                                               "responses": OK}},
               "/user": {"post": {"parameters": [
                   {"name": "email", "in": "formData", "type": "string", "required": True},
                   {"name": "role", "in": "formData", "type": "string"},
                   {"name": "where", "in": "query", "type": "string"}],
                   "responses": OK}}}}
    found = {str(op): op for op in load(doc)}
    owner = found["POST /api/dci/v3/server/{id}/owner"].body
    assert owner is not None and owner.properties["owner"].type == "integer"
    form = found["POST /api/dci/v3/user"].body
    assert form is not None and set(form.properties) == {"email", "role"}
    assert form.required == {"email"} and form.properties["email"].type == "string"


def test_a_body_declared_for_any_media_type() -> None:
    # regression: a body given under */* (as some generators write a JSON body) was read as
    # no body at all, and doctor said "the document declares none"
    body = {"type": "object", "properties": {"owner": {"type": "integer"}}}
    doc = openapi3({"/server/{id}/owner": {"post": {
        "requestBody": {"content": {"*/*": {"schema": body}}}, "responses": OK}}})
    found = only(doc).body
    assert found is not None and set(found.properties) == {"owner"}
    json_first = openapi3({"/user": {"post": {"requestBody": {"content": {
        "*/*": {"schema": {"properties": {"other": {}}}}, "application/json": {"schema": body}}},
        "responses": OK}}})
    assert set(only(json_first).body.properties) == {"owner"}  # type: ignore[union-attr]
    form_only = openapi3({"/user": {"post": {"requestBody": {"content": {
        "multipart/form-data": {"schema": body}}}, "responses": OK}}})
    assert only(form_only).body is None


def test_the_answer_is_the_first_success_with_a_schema() -> None:
    token = {"type": "object", "properties": {"token": {"type": "string"}}}
    doc = openapi3({"/public/token": {"post": {"responses": {
        "default": {"description": "error", "content": {"application/json": {"schema": {
            "properties": {"error": {}}}}}},
        "400": {"description": "bad", "content": {"application/json": {"schema": {}}}},
        "204": {"description": "nothing"},
        "201": {"description": "created", "content": {"application/json": {"schema": token}}},
    }}}}, servers=[{"url": "/api/auth/v4"}])
    answer = only(doc).answer
    assert answer is not None and set(answer.properties) == {"token"}
    swagger = {"swagger": "2.0", "basePath": "/api/auth/v4", "paths": {"/public/token": {
        "post": {"responses": {"200": {"description": "OK", "schema": token}}}}}}
    assert set(only(swagger).answer.properties) == {"token"}  # type: ignore[union-attr]
    assert only(openapi3({"/x": {"get": {"responses": OK}}})).answer is None


def test_methods_read_and_others_ignored() -> None:
    doc = openapi3({"/user": {"get": {"responses": OK}, "post": {"responses": OK},
                              "put": {"responses": OK}, "options": {"responses": OK},
                              "summary": "users", "parameters": []}})
    assert ops(doc) == {"GET /api/dci/v3/user", "POST /api/dci/v3/user",
                        "PUT /api/dci/v3/user"}


# --- discovery ----------------------------------------------------------------------------------

PANEL = "https://dci.example.com"
DCI_DOC = json.dumps(openapi3({"/server": answering({})})).encode()
IP_DOC = json.dumps(openapi3({"/ippool": answering({})}, servers=[{"url": "/api/ip/v3"}],
                             info={"title": "IPmanager", "version": "3"})).encode()


class Pages:
    """A panel's pages by URL; anything else answers 404. Records what was fetched."""

    def __init__(self, pages: Mapping[str, bytes | str]) -> None:
        self.pages = {url: body.encode() if isinstance(body, str) else body
                      for url, body in pages.items()}
        self.fetched: list[str] = []

    def __call__(self, url: str) -> tuple[int, str, bytes]:
        self.fetched.append(url)
        if url in self.pages:
            return 200, "text/html", self.pages[url]
        return 404, "text/html", b"<html>404 Not Found</html>"


def titles(pages: Pages) -> list[str]:
    return [d.title for d in discover(PANEL, pages).documents]


def test_an_initializer_script_lists_the_documents() -> None:
    # swagger-ui-dist >= 4: index.html loads swagger-initializer.js, which holds `urls`
    pages = Pages({
        f"{PANEL}/swagger/": '<script src="./swagger-ui-bundle.js"></script>'
                             '<script src="./swagger-initializer.js"></script>',
        f"{PANEL}/swagger/swagger-initializer.js":
            'window.ui = SwaggerUIBundle({urls: [{url: "docs/dci.json", name: "DCI back"},\n'
            "  {name: 'IPmanager', url: '/ipmgr/swagger.json'}], dom_id: '#swagger-ui'})",
        f"{PANEL}/swagger/docs/dci.json": DCI_DOC,
        f"{PANEL}/ipmgr/swagger.json": IP_DOC,
    })
    assert titles(pages) == ["DCI back", "IPmanager"]
    assert f"{PANEL}/swagger/swagger-ui-bundle.js" not in pages.fetched


@pytest.mark.parametrize("config", [
    # JSON keys, inline in the page (a server-side template)
    '<script>const ui = SwaggerUIBundle({"urls": [{"url": "/swagger/dci.json", '
    '"name": "DCI back"}, {"url": "/swagger/ip.json", "name": "IPmanager"}]})</script>',
    # JSON inside a JavaScript string literal, quotes escaped
    '<script>var c = JSON.parse("{\\"urls\\":[{\\"url\\":\\"/swagger/dci.json\\",'
    '\\"name\\":\\"DCI back\\"},{\\"url\\":\\"/swagger/ip.json\\",\\"name\\":\\"IPmanager\\"}]}")'
    "</script>",
])
def test_a_config_written_as_json_is_read(config: str) -> None:
    # regression: only bare `urls:` keys were recognised, so a page configuring Swagger UI
    # with JSON listed "no API documents"
    pages = Pages({f"{PANEL}/swagger/": config, f"{PANEL}/swagger/dci.json": DCI_DOC,
                   f"{PANEL}/swagger/ip.json": IP_DOC})
    assert titles(pages) == ["DCI back", "IPmanager"]


def test_a_config_url_and_a_single_url() -> None:
    pages = Pages({f"{PANEL}/swagger/": "<script>SwaggerUIBundle({configUrl: 'config.json'})"
                                        "</script>",
                   f"{PANEL}/swagger/config.json": json.dumps({"urls": [
                       {"url": "/d.json", "name": "DCI back"}]}),
                   f"{PANEL}/d.json": DCI_DOC})
    assert titles(pages) == ["DCI back"]
    single = Pages({f"{PANEL}/swagger/": "<script>SwaggerUIBundle({url: '/d.json'})</script>",
                    f"{PANEL}/d.json": DCI_DOC})
    assert titles(single) == ["DCI back"]


def test_a_document_listed_twice_is_fetched_once() -> None:
    pages = Pages({f"{PANEL}/swagger/": '<script>x({urls: [{url: "/d.json", name: "a"}, '
                                        '{url: "/d.json", name: "b"}]})</script>',
                   f"{PANEL}/d.json": DCI_DOC})
    assert titles(pages) == ["DCI back"]
    assert pages.fetched.count(f"{PANEL}/d.json") == 1


def test_a_document_that_fails_is_a_problem_the_others_are_read() -> None:
    pages = Pages({f"{PANEL}/swagger/": '<script>x({urls: [{url: "/d.json", name: "DCI back"}, '
                                        '{url: "/gone.json", name: "BMC proxy service"}]})'
                                        "</script>",
                   f"{PANEL}/d.json": DCI_DOC})
    found = discover(PANEL, pages)
    assert [d.title for d in found.documents] == ["DCI back"]
    assert found.problems == [f"BMC proxy service: {PANEL}/gone.json answered HTTP 404"]


@pytest.mark.parametrize(("pages", "message"), [
    ({}, f"{PANEL}/swagger/ answered HTTP 404"),
    ({f"{PANEL}/swagger/": "<html><body><div id='app'></div></body></html>"},
     f"{PANEL}/swagger/ lists no API documents"),
    ({f"{PANEL}/swagger/": '<script src="swagger-initializer.js"></script>'},
     f"{PANEL}/swagger/swagger-initializer.js answered HTTP 404"),
    ({f"{PANEL}/swagger/": "<script>x({configUrl: '/c.json'})</script>",
      f"{PANEL}/c.json": "<html>login</html>"}, f"{PANEL}/c.json: the Swagger UI config is not"),
    # regression: when every listed document failed, doctor went on with no document and
    # reported every route absent
    ({f"{PANEL}/swagger/": '<script>x({urls: [{url: "/a.json", name: "DCI back"}, '
                           '{url: "/b.json", name: "IPmanager"}]})</script>',
      f"{PANEL}/b.json": "<html>Please log in</html>"},
     f"none of the API documents {PANEL}/swagger/ lists could be read \\(DCI back: "
     f"{PANEL}/a.json answered HTTP 404; IPmanager: {PANEL}/b.json: an HTML page"),
])
def test_discovery_that_fails_says_why(pages: Mapping[str, str], message: str) -> None:
    with pytest.raises(DescriptionError, match=message):
        discover(PANEL + "/", Pages(pages))
