//! The OpenAPI 3.1 document served at `/openapi.json`. A test walks it against the live router:
//! every documented operation must exist, and every route must be documented.

use serde_json::{Value, json};

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn id_param(description: &str) -> Value {
    json!({ "name": "id", "in": "path", "required": true, "description": description,
            "schema": { "type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$" } })
}

fn body(schema: &str) -> Value {
    json!({ "required": true, "content": { "application/json": {
        "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn secured(roles: &str, mut op: Value) -> Value {
    op["security"] = json!([{ "bearer": [] }]);
    op["description"] = json!(format!("Roles: {roles}."));
    op["responses"]["401"] = problem("No valid bearer token");
    op["responses"]["403"] = problem("Role or station scope does not allow this");
    op
}

fn paths() -> Value {
    json!({
        "/v1/stations": { "get": secured("checkout, operator, agent, carrier", json!({
            "operationId": "listStations",
            "summary": "Active stations within a radius with room for a size, best first",
            "parameters": [
                { "name": "lat", "in": "query", "required": true, "schema": { "type": "number", "minimum": -90, "maximum": 90 } },
                { "name": "lon", "in": "query", "required": true, "schema": { "type": "number", "minimum": -180, "maximum": 180 } },
                { "name": "radius_m", "in": "query", "required": true, "schema": { "type": "number", "minimum": 1, "maximum": 50000 } },
                { "name": "size", "in": "query", "required": true, "schema": { "$ref": "#/components/schemas/Size" } }
            ],
            "responses": { "200": ok("Ranked stations", "StationList"), "400": problem("Missing or malformed parameter"), "422": problem("Out-of-range parameter") }
        })) },
        "/v1/stations/{id}": { "get": secured("checkout, operator, agent, carrier", json!({
            "operationId": "getStation",
            "summary": "One station with its compartments per size and state",
            "parameters": [id_param("Station id")],
            "responses": { "200": ok("The station", "Station"), "404": problem("No such station") }
        })) },
        "/v1/stations/{id}/code-entry": { "post": secured("station (bound to this station)", json!({
            "operationId": "enterCode",
            "summary": "A pickup code typed at the locker; releases the parcel",
            "parameters": [id_param("Station id")],
            "requestBody": body("CodeEntry"),
            "summary": "A code entered on the station's screen: the compartment is unlocked by signed command and the code is spent when its door closes",
            "responses": { "200": ok("Unlocking", "Pickup"), "403": problem("Denied by the site's rules"),
                           "409": problem("The parcel cannot be picked up"),
                           "422": problem("Code rejected"),
                           "429": problem("Too many wrong codes; see Retry-After"),
                           "503": problem("The station's locker is not connected; the code stays unspent") }
        })) },
        "/v1/stations/{id}/health": { "get": secured("operator, agent and carrier (their stations)", json!({
            "operationId": "stationHealth",
            "summary": "The locker's latest heartbeat, whether it is online, and its recent alerts",
            "parameters": [id_param("Station id")],
            "responses": { "200": ok("Health", "StationHealth"), "404": problem("No such station") }
        })) },
        "/v1/admin/stations/{id}/status": { "put": secured("operator", json!({
            "operationId": "setStationStatus",
            "summary": "Put a station in or out of service, e.g. back after a tamper alarm was inspected",
            "parameters": [id_param("Station id")],
            "requestBody": body("SetStationStatus"),
            "responses": { "200": ok("The status now", "StationStatusChange"), "404": problem("No such station"),
                           "422": problem("Unknown status or empty reason") }
        })) },
        "/v1/reservations": { "post": secured("checkout", json!({
            "operationId": "createReservation",
            "summary": "Hold a compartment of the smallest size that fits",
            "parameters": [{ "name": "Idempotency-Key", "in": "header", "required": true,
                             "schema": { "type": "string", "minLength": 1, "maxLength": 255 } }],
            "requestBody": body("CreateReservation"),
            "responses": { "201": ok("Held (or replayed: header Idempotent-Replayed)", "Reservation"),
                           "400": problem("Malformed body or missing Idempotency-Key"),
                           "409": problem("No room; `alternatives` lists the nearest stations that have some"),
                           "413": problem("Body over 64 KiB"),
                           "415": problem("Body is not JSON"),
                           "422": problem("Ineligible parcel, invalid values, or key reused with another body") }
        })) },
        "/v1/reservations/{id}": {
            "get": secured("checkout, operator, agent (its stations)", json!({
                "operationId": "getReservation",
                "parameters": [id_param("Reservation id")],
                "responses": { "200": ok("The reservation", "Reservation"), "404": problem("No such reservation") }
            })),
            "delete": secured("checkout, operator", json!({
                "operationId": "releaseReservation",
                "parameters": [id_param("Reservation id")],
                "responses": { "200": ok("Released", "Reservation"), "404": problem("No such reservation"),
                               "409": problem("Not held any more") }
            }))
        },
        "/v1/reservations/{id}/deposit": { "post": secured("agent (its stations)", json!({
            "operationId": "deposit",
            "summary": "Unlock the reserved compartment; the parcel counts as stored when the locker reports its door closed, and the pickup code is in this response only",
            "parameters": [id_param("Reservation id"),
                           { "name": "Prefer", "in": "header", "required": false,
                             "description": "`wait=N`: wait at most N seconds (8 at most and by default) for the door to close",
                             "schema": { "type": "string" } }],
            "responses": { "200": ok("Stored: the door closed", "Deposit"),
                           "202": ok("Unlocked; the door has not closed yet", "DepositPending"),
                           "403": problem("Denied by the site's rules"),
                           "404": problem("No such reservation"),
                           "409": problem("Not held, or the hold ran out"),
                           "503": problem("The station's locker is not connected, or it refused or failed the unlock, or did not answer in time; the reservation stays held") }
        })) },
        "/v1/parcels/{id}": { "get": secured("checkout, operator, agent and carrier (their stations)", json!({
            "operationId": "getParcel",
            "parameters": [id_param("Parcel id")],
            "responses": { "200": ok("The parcel", "Parcel"), "404": problem("No such parcel") }
        })) },
        "/v1/parcels/{id}/code": { "post": secured("checkout", json!({
            "operationId": "reissueCode",
            "summary": "A new pickup code for a stored parcel, sent to the customer alone; the old code stops working",
            "parameters": [id_param("Parcel id"),
                { "name": "Idempotency-Key", "in": "header", "schema": { "type": "string", "minLength": 1, "maxLength": 255 },
                  "description": "A retry with the same key issues no further code and answers the same message" }],
            "responses": { "202": ok("The new code is on its way to the customer", "CodeReissued"),
                           "404": problem("No such parcel"), "409": problem("Not stored") }
        })) },
        "/v1/parcels/{id}/collect": { "post": secured("carrier (its stations)", json!({
            "operationId": "collectParcel",
            "summary": "Unlock an expired parcel's compartment for the carrier that takes it back to its sender; it is returned_to_sender when the locker reports its door closed",
            "parameters": [id_param("Parcel id"),
                { "name": "Prefer", "in": "header", "schema": { "type": "string", "pattern": "^wait=[0-9]+$" },
                  "description": "wait=N: how many seconds (at most 8) to wait for the door to close" }],
            "responses": { "200": ok("Returned to sender: the door closed", "Parcel"),
                           "202": ok("Unlocked; the door has not closed yet", "ParcelCollecting"),
                           "403": problem("Denied by the site's rules"),
                           "404": problem("No such parcel"),
                           "409": problem("Not expired, or already returned to sender"),
                           "503": problem("The station's locker is not connected, or it refused or failed the unlock, or did not answer in time") }
        })) },
        "/v1/admin/access-log": { "get": secured("operator", json!({
            "operationId": "accessLog",
            "parameters": [
                { "name": "from", "in": "query", "schema": { "type": "integer", "minimum": 1 } },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
            ],
            "responses": { "200": ok("Entries of the hash-chained log", "AccessLog"), "422": problem("Bad page size") }
        })) },
        "/v1/admin/outbox": { "get": secured("operator", json!({
            "operationId": "outbox",
            "summary": "Notifications not yet delivered, with the plan the notification router made",
            "parameters": [
                { "name": "from", "in": "query", "schema": { "type": "integer", "minimum": 1 } },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
            ],
            "responses": { "200": ok("Outbox entries", "AccessLog"), "422": problem("Bad page size") }
        })) },
        "/v1/admin/notifications": { "get": secured("operator", json!({
            "operationId": "notifications",
            "summary": "Messages in outbox order with where their delivery stands; status=dead lists the dead letters",
            "parameters": [
                { "name": "status", "in": "query", "schema": { "type": "string", "enum": ["pending", "sent", "delivered", "dead", "expired", "cancelled"] } },
                { "name": "from", "in": "query", "schema": { "type": "integer", "minimum": 1 } },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
            ],
            "responses": { "200": ok("Messages", "Messages"), "422": problem("Bad page size"), "400": problem("Unknown status") }
        })) },
        "/v1/admin/notifications/{id}/requeue": { "post": secured("operator", json!({
            "operationId": "requeueNotification",
            "summary": "A dead letter goes through its plan again, from its first step, now",
            "parameters": [id_param("Message id")],
            "responses": { "200": ok("The message, pending again", "Message"), "404": problem("No such message"),
                           "409": problem("Not a dead letter") }
        })) },
        "/v1/callbacks/sms": { "post": {
            "operationId": "smsStatusCallback",
            "summary": "The SMS provider's status callback (Twilio's shape), signed with X-Twilio-Signature",
            "requestBody": { "required": true, "content": { "application/x-www-form-urlencoded": { "schema": {
                "type": "object", "properties": { "MessageSid": { "type": "string" }, "MessageStatus": { "type": "string" } } } } } },
            "responses": { "204": { "description": "Applied (a status that moves nothing is accepted too)" },
                           "400": problem("Not a form"), "403": problem("The signature does not verify"),
                           "404": problem("No SMS provider is configured"), "422": problem("MessageSid or MessageStatus missing") }
        } },
        "/v1/admin/edges": { "get": secured("operator", json!({
            "operationId": "edges",
            "summary": "Each edge node: connected, sync version and lag, last sync, what it mirrors",
            "responses": { "200": ok("Edge nodes", "Edges") }
        })) },
        "/v1/admin/plugins": {
            "get": secured("operator", json!({
                "operationId": "listPlugins",
                "summary": "What serves each plugin world at each scope, with calls, failures and latency",
                "responses": { "200": ok("Plugin slots", "PluginSlots") }
            })),
            "post": secured("operator", json!({
                "operationId": "pushPlugin",
                "summary": "A signed new plugin version: verified, compiled, run against fixtures, then swapped in",
                "requestBody": body("PluginPush"),
                "responses": { "201": ok("Now serving", "PluginServing"),
                               "413": problem("Component too large"),
                               "422": problem("Refused: unsigned, bad signature, untrusted key, SHA-256 mismatch, wrong world or failed fixtures") }
            }))
        },
        "/v1/admin/plugins/trusted-keys": { "post": secured("operator", json!({
            "operationId": "trustPluginKey",
            "summary": "Trust one more plugin-signing key here (or replace the key of that name); edge nodes keep the keys they were enrolled with",
            "requestBody": body("TrustedKey"),
            "responses": { "200": ok("The keys trusted now", "TrustedKeys"), "422": problem("Not an Ed25519 public key") }
        })) },
        "/v1/admin/plugins/restore": { "post": secured("operator", json!({
            "operationId": "restorePlugin",
            "summary": "Put a plugin taken out of service back",
            "requestBody": body("PluginSlot"),
            "responses": { "200": ok("Serving again", "PluginServing"), "404": problem("Nothing out of service there") }
        })) },
        "/healthz": { "get": { "operationId": "health", "responses": { "200": { "description": "Up" } } } },
        "/metrics": { "get": { "operationId": "metrics", "responses": { "200": { "description": "Prometheus text format",
            "content": { "text/plain": { "schema": { "type": "string" } } } } } } },
        "/openapi.json": { "get": { "operationId": "openapi", "responses": { "200": { "description": "This document" } } } }
    })
}

fn schemas() -> Value {
    let ts = json!({ "type": "string", "format": "date-time" });
    let id = json!({ "type": "string" });
    let size_counts = json!({ "type": "object", "additionalProperties": {
        "type": "object", "properties": { "free": { "type": "integer" }, "total": { "type": "integer" } } } });
    let mut schemas = json!({
        "Problem": { "type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": { "type": "string", "format": "uri" }, "title": { "type": "string" },
            "status": { "type": "integer" }, "detail": { "type": "string" } } },
        "Size": { "type": "string", "enum": ["small", "medium", "large", "oversized"] },
        "Tier": { "type": "string", "enum": ["standard", "prime", "business"] },
        "Location": { "type": "object", "properties": { "lat": { "type": "number" }, "lon": { "type": "number" } } },
        "StationSummary": { "type": "object", "properties": {
            "id": id, "name": { "type": "string" }, "kind": { "type": "string" },
            "location": { "$ref": "#/components/schemas/Location" },
            "distance_m": { "type": "number" }, "score": { "type": "number" }, "sizes": size_counts } },
        "StationList": { "type": "object", "properties": {
            "size": { "$ref": "#/components/schemas/Size" },
            "stations": { "type": "array", "items": { "$ref": "#/components/schemas/StationSummary" } } } },
        "Station": { "type": "object", "properties": {
            "id": id, "name": { "type": "string" }, "kind": { "type": "string" }, "status": { "type": "string" },
            "location": { "$ref": "#/components/schemas/Location" }, "sizes": { "type": "object" } } },
        "Parcel": { "type": "object", "properties": {
            "id": id, "reservation_id": id, "order_id": id, "station_id": id, "compartment_id": id,
            "tier": { "$ref": "#/components/schemas/Tier" },
            "status": { "type": "string", "enum": ["reserved", "stored", "picked_up", "expired", "returned_to_sender", "cancelled"] },
            "reserved_at": ts, "stored_at": ts, "pickup_expires_at": ts, "picked_up_at": ts,
            "expired_at": ts, "collected_at": ts, "cancelled_at": ts } },
        "ParcelSpec": { "type": "object", "additionalProperties": false,
            "required": ["length_mm", "width_mm", "height_mm", "weight_g"], "properties": {
            "length_mm": { "type": "integer", "minimum": 1, "maximum": 482 },
            "width_mm": { "type": "integer", "minimum": 1, "maximum": 482 },
            "height_mm": { "type": "integer", "minimum": 1, "maximum": 482 },
            "weight_g": { "type": "integer", "minimum": 1, "maximum": 15875 } } },
        "CreateReservation": { "type": "object", "additionalProperties": false,
            "required": ["order_id", "parcel", "tier"],
            "description": "Exactly one of station_id and near.", "properties": {
            "order_id": id, "parcel": { "$ref": "#/components/schemas/ParcelSpec" },
            "tier": { "$ref": "#/components/schemas/Tier" }, "station_id": id,
            "near": { "type": "object", "additionalProperties": false, "required": ["lat", "lon", "radius_m"],
                "properties": { "lat": { "type": "number" }, "lon": { "type": "number" },
                                "radius_m": { "type": "number", "minimum": 1, "maximum": 50000 } } },
            "recipient": { "$ref": "#/components/schemas/Recipient" } } },
        "Reservation": { "type": "object", "properties": {
            "id": id, "order_id": id, "parcel_id": id, "station_id": id, "compartment_id": id,
            "size": { "$ref": "#/components/schemas/Size" }, "tier": { "$ref": "#/components/schemas/Tier" },
            "created_at": ts, "hold_until": ts,
            "status": { "type": "string", "enum": ["held", "deposited", "released", "expired", "completed"] } } },
        "Deposit": { "type": "object", "properties": {
            "reservation_id": id, "parcel_id": id, "station_id": id, "compartment_id": id,
            "command_id": id,
            "status": { "type": "string" },
            "pickup_expires_at": ts } },
        "CodeReissued": { "type": "object", "properties": {
            "parcel_id": id, "station_id": id, "status": { "type": "string" }, "pickup_expires_at": ts,
            "message_id": { "type": "string", "description": "The message that carries the new code to the customer" } } },
        "Message": { "type": "object", "properties": {
            "seq": { "type": "integer" }, "id": id, "station_id": id,
            "event": { "type": "string" }, "carries_code": { "type": "boolean" },
            "delivery": { "type": "object", "properties": {
                "status": { "type": "string", "enum": ["pending", "sent", "delivered", "dead", "expired", "cancelled"] },
                "step": { "type": "integer" }, "attempts": { "type": "integer" }, "step_attempts": { "type": "integer" },
                "last_error": { "type": "string" }, "next_at": ts, "delivered_at": ts } } } },
        "Messages": { "type": "object", "properties": {
            "messages": { "type": "array", "items": { "$ref": "#/components/schemas/Message" } },
            "next": { "type": ["integer", "null"] } } },
        "DepositPending": { "type": "object", "properties": {
            "reservation_id": id, "parcel_id": id, "station_id": id, "compartment_id": id,
            "command_id": id, "status": { "const": "awaiting_door" }, "unlock_expires_at": ts } },
        "CodeEntry": { "type": "object", "additionalProperties": false, "required": ["code"],
            "properties": { "code": { "type": "string", "pattern": "^[0-9]{8}$" } } },
        "Pickup": { "type": "object", "properties": {
            "parcel_id": { "type": ["string", "null"] }, "return_id": { "type": ["string", "null"], "description": "Set when the code was a return's drop-off code" },
            "compartment_id": id, "command_id": id,
            "status": { "const": "unlocking" }, "unlock_expires_at": ts } },
        "StationHealth": { "type": "object", "properties": {
            "station": id,
            "status": { "type": "string", "enum": ["active", "inactive", "offline", "out_of_service"] },
            "online": { "type": "boolean", "description": "A heartbeat arrived within the last 30 s" },
            "last_seen": { "oneOf": [ts, { "type": "null" }] },
            "telemetry": { "description": "The latest heartbeat as the locker sent it (docs/protocol.md), or null",
                           "type": ["object", "null"] },
            "alerts": { "type": "array", "items": { "type": "object", "properties": {
                "at": ts, "kind": { "type": "string" }, "detail": { "type": "string" } } } } } },
        "SetStationStatus": { "type": "object", "additionalProperties": false, "required": ["status", "reason"],
            "properties": { "status": { "type": "string", "enum": ["active", "inactive", "out_of_service"] },
                            "reason": { "type": "string", "minLength": 1, "maxLength": 512 } } },
        "StationStatusChange": { "type": "object", "properties": {
            "station": id, "status": { "type": "string" }, "changed": { "type": "boolean" } } },
        "AccessLog": { "type": "object", "properties": {
            "entries": { "type": "array", "items": { "type": "object" } }, "next": { "type": "integer" } } }
    });
    if let (Some(all), Value::Object(plugins)) = (schemas.as_object_mut(), plugin_schemas()) {
        all.extend(plugins);
    }
    if let (Some(all), Value::Object(edges)) = (schemas.as_object_mut(), edge_schemas()) {
        all.extend(edges);
    }
    merged(schemas, return_schemas())
}

fn device_paths() -> Value {
    json!({
        "/v1/admin/devices": {
            "get": secured("operator", json!({
                "operationId": "listDevices",
                "summary": "The device registry: every locker controller, its certificate, model, firmware and status",
                "responses": { "200": ok("Devices", "Devices") }
            })),
            "post": secured("operator", json!({
                "operationId": "provisionDevice",
                "summary": "Provision a station's controller: a certificate over the public key it generated, a registry entry as provisioned",
                "requestBody": body("DeviceProvision"),
                "responses": { "201": ok("Provisioned", "DeviceProvisioned"),
                               "422": problem("No such station, a public key that is not one, a bad model name") }
            }))
        },
        "/v1/admin/devices/{id}": { "get": secured("operator", json!({
            "operationId": "getDevice",
            "parameters": [id_param("Device id (its station's)")],
            "responses": { "200": ok("The device", "Device"), "404": problem("No such device") }
        })) },
        "/v1/admin/devices/{id}/suspend": { "post": secured("operator", json!({
            "operationId": "suspendDevice",
            "summary": "Cut the device's session and refuse it until resumed",
            "parameters": [id_param("Device id (its station's)")],
            "requestBody": body("Reason"),
            "responses": { "200": ok("Suspended", "Device"), "404": problem("No such device"),
                           "409": problem("Not active") }
        })) },
        "/v1/stations/{id}/telemetry": { "get": secured("operator, agent, carrier", json!({
            "operationId": "stationTelemetry",
            "summary": "A station's telemetry as a time series: raw samples (a day), one-minute (30 days) or hourly (a year) rollups",
            "parameters": [
                id_param("Station id"),
                { "name": "from", "in": "query", "schema": { "type": "string", "format": "date-time" } },
                { "name": "to", "in": "query", "schema": { "type": "string", "format": "date-time" } },
                { "name": "step", "in": "query", "schema": { "type": "string", "enum": ["raw", "1m", "1h"] } }
            ],
            "responses": { "200": ok("The series", "TelemetrySeries"), "404": problem("No such station"),
                           "422": problem("Bad time, span or step") }
        })) },
        "/v1/admin/firmware": {
            "get": secured("operator", json!({
                "operationId": "listFirmware",
                "summary": "The firmware images the gateway holds, each with its signed manifest",
                "responses": { "200": ok("Images", "FirmwareImages") }
            })),
            "post": secured("operator", json!({
                "operationId": "uploadFirmware",
                "summary": "Store a firmware image (the body) with its signed manifest (the lockergrid-manifest header, base64 of its JSON), once a trusted firmware key signed it and the bytes are the ones it names",
                "requestBody": { "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
                "responses": { "201": ok("Stored", "SignedManifest"), "200": ok("Held already", "SignedManifest"),
                               "409": problem("Another image has that model and version"),
                               "413": problem("Larger than 32 MiB"),
                               "422": problem("No trusted firmware key, no or a bad manifest header, or refused with its reason code") }
            }))
        },
        "/v1/admin/rollouts": {
            "get": secured("operator", json!({
                "operationId": "listRollouts",
                "summary": "Every firmware rollout with its waves' counts",
                "responses": { "200": ok("Rollouts", "Rollouts") }
            })),
            "post": secured("operator", json!({
                "operationId": "startRollout",
                "summary": "Roll a held image out to the registry's active lockers of its model (the region, or the stations named) in waves",
                "requestBody": body("RolloutRequest"),
                "responses": { "201": ok("Started", "Rollout"),
                               "422": problem("Bad waves, no such image, or no locker in the selection") }
            }))
        },
        "/v1/admin/rollouts/{id}": { "get": secured("operator", json!({
            "operationId": "getRollout",
            "summary": "A rollout with every locker's state",
            "parameters": [id_param("Rollout id")],
            "responses": { "200": ok("The rollout", "Rollout"), "404": problem("No such rollout") }
        })) },
        "/v1/admin/rollouts/{id}/pause": { "post": secured("operator", json!({
            "operationId": "pauseRollout",
            "summary": "Stop offering; lockers fetching or on trial finish",
            "parameters": [id_param("Rollout id")],
            "requestBody": body("Reason"),
            "responses": { "200": ok("Paused", "Rollout"), "404": problem("No such rollout"), "409": problem("Not running") }
        })) },
        "/v1/admin/rollouts/{id}/resume": { "post": secured("operator", json!({
            "operationId": "resumeRollout",
            "summary": "Offer again where the rollout stopped",
            "parameters": [id_param("Rollout id")],
            "responses": { "200": ok("Running", "Rollout"), "404": problem("No such rollout"), "409": problem("Not paused") }
        })) },
        "/v1/admin/rollouts/{id}/abort": { "post": secured("operator", json!({
            "operationId": "abortRollout",
            "summary": "End the rollout: lockers not yet installed are cancelled, those on trial finish by themselves",
            "parameters": [id_param("Rollout id")],
            "requestBody": body("Reason"),
            "responses": { "200": ok("Aborted", "Rollout"), "404": problem("No such rollout"), "409": problem("Completed or aborted already") }
        })) },
        "/v1/admin/alerts": { "get": secured("operator", json!({
            "operationId": "listAlerts",
            "summary": "Alerts the site rules raised from lockers' telemetry, newest first",
            "parameters": [
                { "name": "status", "in": "query", "schema": { "type": "string", "enum": ["open", "acknowledged", "resolved"] } },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
            ],
            "responses": { "200": ok("Alerts", "Alerts"), "422": problem("Bad status or limit") }
        })) },
        "/v1/admin/alerts/{id}/acknowledge": { "post": secured("operator", json!({
            "operationId": "acknowledgeAlert",
            "parameters": [id_param("Alert id")],
            "responses": { "200": ok("Acknowledged", "Alert"), "404": problem("No such alert"), "409": problem("Not open") }
        })) },
        "/v1/admin/alerts/{id}/resolve": { "post": secured("operator", json!({
            "operationId": "resolveAlert",
            "parameters": [id_param("Alert id")],
            "responses": { "200": ok("Resolved", "Alert"), "404": problem("No such alert"), "409": problem("Resolved already") }
        })) },
        "/v1/admin/stations/{id}/lockdown-override": {
            "put": secured("operator", json!({
                "operationId": "overrideLockdown",
                "summary": "Let a technician on site open the doors of a locked-down station for a bounded time; every door names it in the access log",
                "parameters": [id_param("Station id")],
                "requestBody": body("SiteRulesOverrideRequest"),
                "responses": { "200": ok("The lock-down now", "LockdownState"), "404": problem("No such station"),
                               "409": problem("Not locked down"), "422": problem("Bad reason or minutes") }
            })),
            "delete": secured("operator", json!({
                "operationId": "endLockdownOverride",
                "parameters": [id_param("Station id")],
                "responses": { "200": ok("The lock-down now", "LockdownState"), "404": problem("No such station"),
                               "409": problem("Not locked down") }
            }))
        },
        "/v1/admin/stations/{id}/clear-lockdown": { "post": secured("operator", json!({
            "operationId": "clearLockdown",
            "summary": "End a station's lock-down after inspection: its doors open again and it is back in service",
            "parameters": [id_param("Station id")],
            "requestBody": body("Reason"),
            "responses": { "200": ok("Cleared", "LockdownState"), "404": problem("No such station"),
                           "409": problem("Not locked down") }
        })) },
        "/v1/admin/compartments/{id}/out-of-service": { "post": secured("operator", json!({
            "operationId": "compartmentOutOfService",
            "summary": "Take a compartment out of service; its hold moves to another compartment of the station, a parcel or return inside to the named destination",
            "parameters": [id_param("Compartment id, e.g. ams-zuid:S001")],
            "requestBody": body("OutOfService"),
            "responses": { "200": ok("Out of service", "CompartmentService"), "404": problem("No such compartment"),
                           "409": problem("In maintenance already, or held with no other compartment free"),
                           "422": problem("Contents inside and no destination, or a destination that cannot take them") }
        })) },
        "/v1/admin/compartments/{id}/in-service": { "post": secured("operator", json!({
            "operationId": "compartmentInService",
            "parameters": [id_param("Compartment id")],
            "requestBody": body("Reason"),
            "responses": { "200": ok("In service", "CompartmentService"), "404": problem("No such compartment"),
                           "409": problem("Not in maintenance") }
        })) },
        "/v1/admin/devices/{id}/decommission": { "post": secured("operator", json!({
            "operationId": "decommissionDevice",
            "summary": "Take a device out of the fleet for good: certificate revoked, session cut, station out of discovery, held reservations moved (customers told), parcels listed for collection",
            "parameters": [id_param("Device id (its station's)")],
            "requestBody": body("Reason"),
            "responses": { "200": ok("Decommissioned", "DeviceDecommissioned"), "404": problem("No such device"),
                           "409": problem("Decommissioned already") }
        })) },
        "/v1/admin/devices/{id}/resume": { "post": secured("operator", json!({
            "operationId": "resumeDevice",
            "parameters": [id_param("Device id (its station's)")],
            "requestBody": body("Reason"),
            "responses": { "200": ok("Active again", "Device"), "404": problem("No such device"),
                           "409": problem("Not suspended") }
        })) }
    })
}

fn device_schemas() -> Value {
    let ts = json!({ "type": "string", "format": "date-time" });
    json!({
        "Device": { "type": "object", "required": ["id", "station", "serial", "model", "status", "provisioned_at", "online"], "properties": {
            "id": { "type": "string" }, "station": { "type": "string" },
            "serial": { "type": "string", "pattern": "^[0-9a-f]+$" },
            "fingerprint": { "type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256 of the certificate; absent for a device taken in from an older CA index" },
            "model": { "type": "string" },
            "firmware": { "type": "string", "description": "As the device reported after its latest boot" },
            "status": { "type": "string", "enum": ["provisioned", "active", "suspended", "decommissioned"] },
            "provisioned_at": ts, "activated_at": ts, "decommissioned_at": ts, "last_seen": ts,
            "self_test_failures": { "type": "array", "items": { "type": "string" } },
            "online": { "type": "boolean" } } },
        "DeviceDecommissioned": { "type": "object", "properties": {
            "device": { "$ref": "#/components/schemas/Device" },
            "moved": { "type": "array", "items": { "type": "object", "properties": {
                "reservation_id": { "type": "string" }, "station_id": { "type": "string" }, "compartment_id": { "type": "string" } } } },
            "released": { "type": "array", "items": { "type": "string" } },
            "parcels_to_collect": { "type": "array", "items": { "type": "object", "properties": {
                "parcel_id": { "type": "string" }, "compartment_id": { "type": "string" }, "status": { "type": "string" } } } } } },
        "OutOfService": { "type": "object", "additionalProperties": false, "required": ["reason"], "properties": {
            "reason": { "type": "string", "minLength": 1, "maxLength": 512 },
            "destination": { "type": "string", "description": "An available compartment of the same station the contents fit" } } },
        "CompartmentService": { "type": "object", "properties": {
            "compartment": { "type": "object", "properties": {
                "id": { "type": "string" }, "station": { "type": "string" }, "state": { "type": "string" } } },
            "moved_to": { "type": ["string", "null"] } } },
        "Alert": { "type": "object", "required": ["id", "station", "source", "code", "severity", "message", "status", "opened_at"], "properties": {
            "id": { "type": "string" }, "station": { "type": "string" },
            "source": { "type": "string", "description": "battery, mains, tamper or temperature:<compartment>" },
            "code": { "type": "string" }, "severity": { "type": "string", "enum": ["info", "warning", "critical"] },
            "message": { "type": "string" },
            "status": { "type": "string", "enum": ["open", "acknowledged", "resolved"] },
            "opened_at": ts, "resolved_at": ts,
            "acknowledged": { "type": "array", "prefixItems": [{ "type": "string" }, ts] } } },
        "TelemetrySeries": { "type": "object", "properties": {
            "station": { "type": "string" }, "from": ts, "to": ts,
            "step": { "type": "string", "enum": ["raw", "1m", "1h"] },
            "points": { "type": "array", "items": { "type": "object", "description": "A raw sample (at, battery_percent, mains, tamper, doors_open, queued_events, temperatures) or a rollup (start, samples, and min/max/sum/n of each reading)" } } } },
        "SignedManifest": { "type": "object", "properties": {
            "manifest": { "type": "object", "properties": {
                "version": { "type": "string" }, "model": { "type": "string" },
                "sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" }, "size": { "type": "integer" },
                "min_version": { "type": "string" }, "counter": { "type": "integer" } } },
            "key": { "type": "string" }, "signature": { "type": "string" } } },
        "FirmwareImages": { "type": "object", "properties": { "images": { "type": "array", "items": { "$ref": "#/components/schemas/SignedManifest" } } } },
        "RolloutRequest": { "type": "object", "additionalProperties": false, "required": ["model", "version"], "properties": {
            "model": { "type": "string" }, "version": { "type": "string" },
            "stations": { "type": "array", "items": { "type": "string" } },
            "waves": { "type": "array", "items": { "type": "object", "required": ["percent"], "properties": {
                "percent": { "type": "integer", "minimum": 1, "maximum": 100 },
                "soak_s": { "type": "integer", "default": 600 },
                "advance_percent": { "type": "integer", "default": 100 },
                "error_percent": { "type": "integer", "default": 0 },
                "min_done": { "type": "integer", "default": 1 },
                "on_error": { "type": "string", "enum": ["pause", "abort"], "default": "pause" } } } },
            "timeout_s": { "type": "integer", "default": 1800 },
            "max_parallel": { "type": "integer", "default": 20 },
            "max_per_minute": { "type": "integer", "minimum": 1 } } },
        "Rollout": { "type": "object", "properties": {
            "id": { "type": "string" },
            "status": { "type": "string", "enum": ["running", "paused", "aborted", "completed"] },
            "reason": { "type": ["string", "null"] },
            "image": { "type": "object" }, "wave": { "type": "integer" }, "soak_since": { "type": ["integer", "null"] },
            "waves": { "type": "array", "items": { "type": "object" } }, "totals": { "type": "object" },
            "lockers": { "type": "array", "items": { "type": "object" } } } },
        "Rollouts": { "type": "object", "properties": { "rollouts": { "type": "array", "items": { "$ref": "#/components/schemas/Rollout" } } } },
        "Alerts": { "type": "object", "properties": { "alerts": { "type": "array", "items": { "$ref": "#/components/schemas/Alert" } } } },
        "LockdownState": { "type": "object", "properties": {
            "station": { "type": "string" }, "status": { "type": "string" },
            "lockdown": { "type": ["object", "null"], "properties": {
                "since": ts, "reason": { "type": "string" },
                "technician": { "type": ["object", "null"], "properties": {
                    "by": { "type": "string" }, "reason": { "type": "string" }, "until": ts } } } } } },
        "Reason": { "type": "object", "additionalProperties": false, "required": ["reason"], "properties": {
            "reason": { "type": "string", "minLength": 1, "maxLength": 512 } } },
        "Devices": { "type": "object", "properties": { "devices": { "type": "array", "items": { "$ref": "#/components/schemas/Device" } } } },
        "DeviceProvision": { "type": "object", "additionalProperties": false, "required": ["station", "model", "public_key_pem"], "properties": {
            "station": { "type": "string" },
            "model": { "type": "string", "minLength": 1, "maxLength": 64 },
            "public_key_pem": { "type": "string", "maxLength": 4096, "description": "The device's public key, PEM PUBLIC KEY; its private key stays with it" } } },
        "DeviceProvisioned": { "type": "object", "properties": {
            "device": { "$ref": "#/components/schemas/Device" },
            "certificate_pem": { "type": "string" }, "ca_pem": { "type": "string" } } }
    })
}

/// `a` with the members of `b` added.
fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(all), Value::Object(more)) = (a.as_object_mut(), b) {
        all.extend(more);
    }
    a
}

fn token_paths() -> Value {
    let key_param = json!({ "name": "id", "in": "path", "required": true, "description": "Token key id",
        "schema": { "type": "string", "pattern": "^[0-9a-f]{8}$" } });
    json!({
        "/v1/admin/token-keys": {
            "get": secured("operator", json!({
                "operationId": "listTokenKeys",
                "summary": "The keys bearer tokens are signed with; the active one signs new tokens",
                "responses": { "200": ok("The keys", "TokenKeys") }
            })),
            "post": secured("operator", json!({
                "operationId": "rotateTokenKey",
                "summary": "A new key signs every token issued from now on; tokens of the others keep working until they are retired",
                "responses": { "201": ok("Rotated", "TokenKeyRotated") }
            }))
        },
        "/v1/admin/token-keys/{id}": { "delete": secured("operator", json!({
            "operationId": "retireTokenKey",
            "summary": "Retire a key: every token it signed is refused from now on",
            "parameters": [key_param],
            "responses": { "204": { "description": "Retired" }, "404": problem("No such key"),
                           "409": problem("The key signs new tokens; rotate first") }
        })) },
        "/v1/admin/stations/{id}/site-rules-override": {
            "put": secured("operator", json!({
                "operationId": "overrideSiteRules",
                "summary": "Let a station open for a while when its site rules cannot answer (their plugin fails or is out of service); site rules keep it shut otherwise. Every door opened under it says so in the access log",
                "parameters": [id_param("Station id")],
                "requestBody": body("SiteRulesOverrideRequest"),
                "responses": { "200": ok("In force", "SiteRulesOverrideState"), "404": problem("No such station"),
                               "422": problem("No reason, or minutes outside 1..=1440") }
            })),
            "delete": secured("operator", json!({
                "operationId": "endSiteRulesOverride",
                "summary": "End a station's override",
                "parameters": [id_param("Station id")],
                "responses": { "200": ok("Ended", "SiteRulesOverrideState"), "404": problem("No such station") }
            }))
        },
        "/v1/admin/revocations": {
            "get": secured("operator", json!({
                "operationId": "listRevocations",
                "summary": "Tokens refused before they expire",
                "responses": { "200": ok("The revocations in force", "Revocations") }
            })),
            "post": secured("operator", json!({
                "operationId": "revokeTokens",
                "summary": "Revoke one token by its id, or every token of a subject issued until now",
                "requestBody": body("Revoke"),
                "responses": { "201": ok("Revoked", "RevocationCreated"),
                               "422": problem("Neither or both of token_id and subject, or too long") }
            }))
        }
    })
}

fn token_schemas() -> Value {
    let ts = json!({ "type": "string", "format": "date-time" });
    json!({
        "TokenKey": { "type": "object", "required": ["id", "active"], "properties": {
            "id": { "type": "string", "pattern": "^[0-9a-f]{8}$" }, "active": { "type": "boolean" },
            "created_at": { "type": ["string", "null"], "format": "date-time" } } },
        "TokenKeys": { "type": "object", "properties": { "keys": { "type": "array", "items": { "$ref": "#/components/schemas/TokenKey" } } } },
        "TokenKeyRotated": { "type": "object", "properties": { "key": { "type": "string" },
            "keys": { "type": "array", "items": { "$ref": "#/components/schemas/TokenKey" } } } },
        "Revoke": { "type": "object", "additionalProperties": false, "description": "Exactly one of the two",
            "properties": {
                "token_id": { "type": "string", "minLength": 1, "maxLength": 128, "description": "A token's id, as `lockergrid token issue` reports it" },
                "subject": { "type": "string", "minLength": 1, "maxLength": 128, "description": "Every token of this subject issued until now" } } },
        "Revocation": { "type": "object", "properties": {
            "revoked": { "type": "object", "description": "`{\"token\": id}` or `{\"subject\": subject}`" },
            "revoked_at": ts, "forget_at": ts } },
        "RevocationCreated": { "type": "object", "properties": { "revocation": { "$ref": "#/components/schemas/Revocation" } } },
        "SiteRulesOverrideRequest": { "type": "object", "additionalProperties": false, "required": ["reason", "minutes"], "properties": {
            "reason": { "type": "string", "minLength": 1, "maxLength": 512 },
            "minutes": { "type": "integer", "minimum": 1, "maximum": 1440 } } },
        "SiteRulesOverrideState": { "type": "object", "properties": {
            "station": { "type": "string" },
            "site_rules_override": { "type": ["object", "null"], "properties": {
                "by": { "type": "string" }, "reason": { "type": "string" }, "until": ts } } } },
        "Revocations": { "type": "object", "properties": { "revocations": { "type": "array", "items": { "$ref": "#/components/schemas/Revocation" } } } }
    })
}

fn return_paths() -> Value {
    let prefer = json!({ "name": "Prefer", "in": "header", "required": false,
        "description": "`wait=N`: wait at most N seconds (8 at most and by default) for the door to close",
        "schema": { "type": "string" } });
    json!({
        "/v1/returns": { "post": secured("checkout", json!({
            "operationId": "createReturn",
            "parameters": [{ "name": "Idempotency-Key", "in": "header", "schema": { "type": "string", "minLength": 1, "maxLength": 255 },
                             "description": "A retry with the same key and body answers 200 with the same return; no second code is sent" }],
            "summary": "Authorise a return at a station that has a free compartment the parcel fits now; the drop-off code goes to the customer alone, in the message this writes",
            "requestBody": body("CreateReturn"),
            "responses": { "201": ok("Authorised; the drop-off code goes to the customer alone", "Return"),
                           "200": ok("The return this Idempotency-Key authorised before", "Return"),
                           "409": problem("The station is not in service or has no free compartment the parcel fits"),
                           "422": problem("Ineligible parcel, unknown station, malformed body, or an Idempotency-Key used with another body") }
        })) },
        "/v1/returns/{id}": { "get": secured("checkout, operator, carrier (its stations)", json!({
            "operationId": "getReturn",
            "parameters": [id_param("Return id")],
            "responses": { "200": ok("The return", "Return"), "404": problem("No such return") }
        })) },
        "/v1/returns/{id}/collect": { "post": secured("carrier (its stations)", json!({
            "operationId": "collectReturn",
            "summary": "Unlock a dropped-off return's compartment; it counts as collected when the locker reports its door closed",
            "parameters": [id_param("Return id"), prefer],
            "responses": { "200": ok("Collected: the door closed", "Return"),
                           "202": ok("Unlocked; the door has not closed yet", "ReturnCollecting"),
                           "403": problem("Denied by the site's rules"),
                           "404": problem("No such return"),
                           "409": problem("Not dropped off, or already collected"),
                           "503": problem("The station's locker is not connected, or it refused or failed the unlock, or did not answer in time") }
        })) },
        "/v1/stations/{id}/parcels": { "get": secured("carrier (its stations), operator", json!({
            "operationId": "stationParcelsToCollect",
            "summary": "The expired parcels waiting at a station for a carrier to take them back to their senders, longest waiting first",
            "parameters": [id_param("Station id")],
            "responses": { "200": ok("Parcels waiting", "StationParcels"), "404": problem("No such station") }
        })) },
        "/v1/stations/{id}/returns": { "get": secured("carrier (its stations), operator", json!({
            "operationId": "stationReturns",
            "summary": "The returns waiting at a station for a carrier, oldest first",
            "parameters": [id_param("Station id")],
            "responses": { "200": ok("Returns waiting", "StationReturns"), "404": problem("No such station") }
        })) }
    })
}

fn return_schemas() -> Value {
    let ts = json!({ "type": "string", "format": "date-time" });
    let id = json!({ "type": "string" });
    json!({
        "CreateReturn": { "type": "object", "additionalProperties": false,
            "required": ["order_id", "station_id", "parcel"], "properties": {
            "order_id": id, "station_id": id, "parcel": { "$ref": "#/components/schemas/ParcelSpec" },
            "recipient": { "$ref": "#/components/schemas/Recipient" } } },
        "Return": { "type": "object", "properties": {
            "id": id, "order_id": id, "station_id": id,
            "size": { "$ref": "#/components/schemas/Size" },
            "status": { "type": "string", "enum": ["authorized", "dropping_off", "dropped_off", "collected", "expired"] },
            "created_at": ts, "expires_at": ts,
            "compartment_id": { "type": ["string", "null"] },
            "dropped_off_at": { "oneOf": [ts, { "type": "null" }] },
            "collected_at": { "oneOf": [ts, { "type": "null" }] } } },
        "ParcelCollecting": { "type": "object", "properties": {
            "parcel_id": id, "station_id": id, "compartment_id": id, "command_id": id,
            "status": { "const": "awaiting_door" }, "unlock_expires_at": ts } },
        "StationParcels": { "type": "object", "properties": {
            "station_id": id, "parcels": { "type": "array", "items": { "$ref": "#/components/schemas/Parcel" } } } },
        "ReturnCollecting": { "type": "object", "properties": {
            "return_id": id, "station_id": id, "compartment_id": id, "command_id": id,
            "status": { "const": "awaiting_door" }, "unlock_expires_at": ts } },
        "StationReturns": { "type": "object", "properties": {
            "station_id": id, "returns": { "type": "array", "items": { "$ref": "#/components/schemas/Return" } } } }
    })
}

fn edge_schemas() -> Value {
    json!({
        "Edges": { "type": "object", "properties": { "edges": { "type": "array", "items": { "type": "object", "properties": {
            "id": { "type": "string" }, "stations": { "type": "array", "items": { "type": "string" } },
            "connected": { "type": "boolean" }, "last_seen": { "type": ["string", "null"], "format": "date-time" },
            "version": { "type": "integer", "description": "The newest version of its records at the gateway" },
            "synced_version": { "type": ["integer", "null"], "description": "The version it reported holding (this gateway epoch)" },
            "lag": { "type": "integer", "description": "Versions it is behind" },
            "last_sync": { "type": ["string", "null"], "format": "date-time", "description": "When it last reported holding the newest version" },
            "compartments": { "type": "integer" }, "codes": { "type": "integer" },
            "outbox": { "type": "integer", "description": "Decisions waiting in its outbox" },
            "decisions_applied": { "type": "integer", "description": "The last of its decisions applied here" },
            "clock_offset_ms": { "type": ["integer", "null"], "description": "Its clock minus the gateway's at its last report" },
            "deltas_sent": { "type": "integer" }, "full_resyncs": { "type": "integer" },
            "plugins": { "type": "array", "description": "The plugins it was sent (site rules), slot by slot",
                "items": { "$ref": "#/components/schemas/EdgePlugin" } },
            "leases": { "type": "array", "description": "Its lease of empty compartments at each of its stations, for offline return drop-offs",
                "items": { "$ref": "#/components/schemas/EdgeLease" } } } } } } },
        "EdgeLease": { "type": "object", "properties": {
            "station": { "type": "string" },
            "epoch": { "type": "integer", "description": "Raised at every change of the lease" },
            "acked_epoch": { "type": "integer", "description": "The newest epoch the edge node confirmed holding" },
            "sizes": { "type": "object", "description": "Compartments held per size",
                "additionalProperties": { "type": "integer" } },
            "revoking": { "type": "integer", "description": "Compartments taken back, held until the edge node confirms" } } },
        "EdgePlugin": { "type": "object", "properties": {
            "world": { "$ref": "#/components/schemas/World" }, "scope": { "$ref": "#/components/schemas/Scope" },
            "serving": { "$ref": "#/components/schemas/EdgePluginVersion" },
            "refused": { "type": "object", "description": "The last version it would not run", "properties": {
                "plugin": { "$ref": "#/components/schemas/EdgePluginVersion" }, "reason": { "type": "string" } } } } },
        "EdgePluginVersion": { "type": "object", "properties": {
            "name": { "type": "string" }, "version": { "type": "string" }, "digest": { "type": "string" } } }
    })
}

fn plugin_schemas() -> Value {
    json!({
        "Recipient": { "type": "object", "additionalProperties": false, "required": ["id", "channels", "contact"],
            "description": "Who hears about the parcel and where; every channel needs its address (email: email, sms: phone, push and webhook: app_url). The addresses are sealed (AES-256-GCM) at once and shown masked.",
            "properties": {
            "id": { "type": "string", "minLength": 1, "maxLength": 128 },
            "channels": { "type": "array", "minItems": 1, "uniqueItems": true,
                "items": { "type": "string", "enum": ["push", "sms", "email", "webhook"] } },
            "quiet_hours": { "type": "array", "minItems": 2, "maxItems": 2,
                "items": { "type": "integer", "minimum": 0, "maximum": 1439 } },
            "contact": { "type": "object", "additionalProperties": false, "properties": {
                "email": { "type": "string", "maxLength": 254, "format": "email" },
                "phone": { "type": "string", "pattern": "^\\+[1-9][0-9]{6,14}$", "description": "E.164" },
                "app_url": { "type": "string", "format": "uri", "maxLength": 2048, "description": "The customer app's endpoint: https, or http on loopback" } } } } },
        "World": { "type": "string", "enum": ["reservation-policy", "notification-router", "site-rules"] },
        "Scope": { "type": "string", "pattern": "^(default|region:[A-Za-z0-9._:-]{1,64}|station:[A-Za-z0-9._:-]{1,64})$" },
        "TrustedKey": { "type": "object", "additionalProperties": false, "required": ["name", "public_key"], "properties": {
            "name": { "type": "string", "minLength": 1, "maxLength": 64 },
            "public_key": { "type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "Ed25519 public key, hex" } } },
        "TrustedKeys": { "type": "object", "properties": { "trusted_keys": { "type": "array", "items": { "$ref": "#/components/schemas/TrustedKey" } } } },
        "PluginSlot": { "type": "object", "additionalProperties": false, "required": ["world", "scope"], "properties": {
            "world": { "$ref": "#/components/schemas/World" }, "scope": { "$ref": "#/components/schemas/Scope" } } },
        "PluginInfo": { "type": "object", "properties": {
            "name": { "type": "string" }, "version": { "type": "string" },
            "digest": { "type": "string", "pattern": "^[0-9a-f]{64}$" }, "signed_by": { "type": "string" } } },
        "PluginServing": { "type": "object", "properties": {
            "world": { "$ref": "#/components/schemas/World" }, "scope": { "$ref": "#/components/schemas/Scope" },
            "plugin": { "$ref": "#/components/schemas/PluginInfo" } } },
        "PluginSlots": { "type": "object", "properties": { "slots": { "type": "array", "items": { "type": "object", "properties": {
            "world": { "$ref": "#/components/schemas/World" }, "scope": { "$ref": "#/components/schemas/Scope" },
            "state": { "type": "string", "enum": ["serving", "out_of_service", "built_in"] },
            "plugin": { "$ref": "#/components/schemas/PluginInfo" },
            "out_of_service": { "type": "object" },
            "calls": { "type": "integer" }, "failures": { "type": "integer" }, "consecutive_failures": { "type": "integer" },
            "latency_us": { "type": "object" } } } } } },
        "PluginPush": { "type": "object", "additionalProperties": false,
            "required": ["world", "scope", "name", "version", "sha256", "component"], "properties": {
            "world": { "$ref": "#/components/schemas/World" }, "scope": { "$ref": "#/components/schemas/Scope" },
            "name": { "type": "string", "pattern": "^[A-Za-z0-9._+-]{1,64}$" },
            "version": { "type": "string", "pattern": "^[A-Za-z0-9._+-]{1,64}$" },
            "sha256": { "type": "string", "pattern": "^[0-9a-fA-F]{64}$" },
            "signature": { "type": "string", "description": "ed25519 <public key hex> <signature hex> over the binding: world, scope, name, version, sha256, settings and limits (`lockergrid plugin sign`)" },
            "component": { "type": "string", "contentEncoding": "base64" },
            "settings": { "type": "object" },
            "limits": { "type": "object", "properties": {
                "memory_mib": { "type": "integer", "minimum": 1, "maximum": lockergrid_model::MAX_MEMORY_MIB },
                "deadline_ms": { "type": "integer", "minimum": 1, "maximum": lockergrid_model::MAX_DEADLINE_MS },
                "timeout_ms": { "type": "integer", "minimum": 1, "maximum": lockergrid_model::MAX_TIMEOUT_MS } } } } }
    })
}

/// The whole document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Lockergrid gateway API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Checkout, deposit and pickup for a parcel-locker network. Errors are RFC 9457 problem documents whose `type` is `urn:lockergrid:problem:<kind>`."
        },
        "paths": merged(merged(merged(paths(), return_paths()), token_paths()), device_paths()),
        "components": {
            "schemas": merged(merged(schemas(), token_schemas()), device_schemas()),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        }
    })
}
