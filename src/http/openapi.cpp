#include "http/openapi.h"

#include <boost/json.hpp>

namespace vigil::http {

namespace json = boost::json;

namespace {

// The model-independent part. Kept as JSON text so that it reads like the document it is; the
// model's feature names and width are patched in by openapi_document().
constexpr const char* kDocument = R"json({
  "openapi": "3.0.3",
  "info": {
    "title": "vigil",
    "description": "Real-time transaction scoring. Scoring routes share the batcher with the Kafka stream and take priority over it. Errors are {\"error\": \"...\"} naming the field or index.",
    "version": "0"
  },
  "tags": [
    {"name": "scoring", "description": "Score transactions (bearer token when http.auth_token is set)"},
    {"name": "recommendations", "description": "Terminal recommendations for a customer (bearer token when http.auth_token is set)"},
    {"name": "kserve-v2", "description": "Open Inference Protocol (KServe v2), JSON"},
    {"name": "repository", "description": "Open Inference Protocol model repository extension (the admin token, http.admin_token; off (403) without one)"},
    {"name": "operations", "description": "Health, readiness, model, metrics"}
  ],
  "paths": {
    "/predict": {
      "post": {
        "tags": ["scoring"],
        "summary": "Score instances given as arrays in model order or objects of named features",
        "security": [{"bearerAuth": []}, {}],
        "parameters": [{"$ref": "#/components/parameters/ModelQuery"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
        "responses": {
          "200": {"description": "One prediction per instance, in order", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "405": {"$ref": "#/components/responses/MethodNotAllowed"},
          "413": {"$ref": "#/components/responses/PayloadTooLarge"},
          "422": {"$ref": "#/components/responses/Unprocessable"},
          "500": {"$ref": "#/components/responses/InternalError"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v2": {
      "get": {
        "tags": ["kserve-v2"], "summary": "Server metadata",
        "responses": {"200": {"description": "Server metadata", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ServerMetadata"}}}}}
      }
    },
    "/v2/health/live": {
      "get": {
        "tags": ["kserve-v2"], "summary": "Server liveness",
        "responses": {"200": {"description": "Live", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Live"}}}}}
      }
    },
    "/v2/health/ready": {
      "get": {
        "tags": ["kserve-v2"], "summary": "Server readiness (same checks as /ready)",
        "responses": {
          "200": {"description": "Ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}},
          "503": {"description": "Not ready; failing lists why", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}}
        }
      }
    },
    "/v2/models/{model}": {
      "get": {
        "tags": ["kserve-v2"], "summary": "Model metadata (the scoring model, or the recommender: recommend.model)",
        "parameters": [{"$ref": "#/components/parameters/Model"}],
        "responses": {
          "200": {"description": "Model metadata", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelMetadata"}}}},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v2/models/{model}/ready": {
      "get": {
        "tags": ["kserve-v2"], "summary": "Model readiness (the scoring model, or the recommender)",
        "parameters": [{"$ref": "#/components/parameters/Model"}],
        "responses": {
          "200": {"description": "Ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelReady"}}}},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"description": "Not ready (shutting down or no model)", "content": {"application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/ModelReady"}, {"$ref": "#/components/schemas/Error"}]}}}}
        }
      }
    },
    "/v2/models/{model}/versions/{version}": {
      "get": {
        "tags": ["kserve-v2"], "summary": "Model metadata for one version (only the served version exists)",
        "parameters": [{"$ref": "#/components/parameters/Model"}, {"$ref": "#/components/parameters/Version"}],
        "responses": {
          "200": {"description": "Model metadata", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelMetadata"}}}},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v2/models/{model}/versions/{version}/ready": {
      "get": {
        "tags": ["kserve-v2"], "summary": "Model version readiness",
        "parameters": [{"$ref": "#/components/parameters/Model"}, {"$ref": "#/components/parameters/Version"}],
        "responses": {
          "200": {"description": "Ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelReady"}}}},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"description": "Not ready (shutting down or no model)", "content": {"application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/ModelReady"}, {"$ref": "#/components/schemas/Error"}]}}}}
        }
      }
    },
    "/v2/models/{model}/infer": {
      "post": {
        "tags": ["kserve-v2", "scoring"], "summary": "Inference (Open Inference Protocol)",
        "security": [{"bearerAuth": []}, {}],
        "parameters": [{"$ref": "#/components/parameters/Model"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}}}},
        "responses": {
          "200": {"description": "Scores, one per row", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferResponse"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "405": {"$ref": "#/components/responses/MethodNotAllowed"},
          "413": {"$ref": "#/components/responses/PayloadTooLarge"},
          "422": {"$ref": "#/components/responses/Unprocessable"},
          "500": {"$ref": "#/components/responses/InternalError"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v2/models/{model}/versions/{version}/infer": {
      "post": {
        "tags": ["kserve-v2", "scoring"], "summary": "Inference on one version (only the served version exists)",
        "security": [{"bearerAuth": []}, {}],
        "parameters": [{"$ref": "#/components/parameters/Model"}, {"$ref": "#/components/parameters/Version"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}}}},
        "responses": {
          "200": {"description": "Scores, one per row", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferResponse"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "405": {"$ref": "#/components/responses/MethodNotAllowed"},
          "413": {"$ref": "#/components/responses/PayloadTooLarge"},
          "422": {"$ref": "#/components/responses/Unprocessable"},
          "500": {"$ref": "#/components/responses/InternalError"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/health": {
      "get": {
        "tags": ["operations"], "summary": "Liveness: the process answers",
        "responses": {"200": {"description": "Live", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}
      }
    },
    "/ready": {
      "get": {
        "tags": ["operations"], "summary": "Readiness: model loaded, Kafka assigned (when configured), queue below its high watermark, not shutting down",
        "responses": {
          "200": {"description": "Ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}},
          "503": {"description": "Not ready; failing lists the checks that fail", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}}
        }
      }
    },
    "/v1/scores/{transaction_id}": {
      "get": {
        "tags": ["scoring"], "summary": "The score record vigil cached in Redis for a transaction (streamed, or scored over HTTP with a transaction_id)",
        "security": [{"bearerAuth": []}, {}],
        "parameters": [{"name": "transaction_id", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 256}, "description": "Percent-encoded as needed"}],
        "responses": {
          "200": {"description": "The record as on the scores topic", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreRecord"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"description": "No score for that transaction (never scored, or expired after redis.ttl_s)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "422": {"$ref": "#/components/responses/Unprocessable"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/recommend": {
      "post": {
        "tags": ["recommendations"], "summary": "The top k terminals for a customer from the recommender model (recommend.model, Scout: docs/scout.md), best first, ties in terminal id order. Requests are batched into one forward pass. An unknown customer gets the most popular terminals, cold_start true.",
        "security": [{"bearerAuth": []}, {}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["customer_id"], "properties": {
          "customer_id": {"type": "string", "minLength": 1, "maxLength": 256},
          "k": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
          "exclude_seen": {"type": "boolean", "default": false, "description": "Leave out the terminals the customer visited in the model's training data"}}},
          "example": {"customer_id": "C000123", "k": 10, "exclude_seen": false}}}},
        "responses": {
          "200": {"description": "The recommendations", "content": {"application/json": {"schema": {"type": "object", "properties": {
            "customer_id": {"type": "string"}, "model_name": {"type": "string"}, "model_version": {"type": "string"},
            "cold_start": {"type": "boolean", "description": "The customer is unknown to the model: the most popular terminals"},
            "recommendations": {"type": "array", "items": {"type": "object", "properties": {"terminal_id": {"type": "string"}, "score": {"type": "number"}}}}}}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"description": "No recommender: recommend.model is empty", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "422": {"$ref": "#/components/responses/Unprocessable"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/": {
      "get": {
        "tags": ["operations"], "summary": "The live view: one self-contained HTML page (also at /ui) showing the stream as it runs, fed by /v1/events",
        "responses": {
          "200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}},
          "404": {"description": "The live view is off (http.max_event_subscribers = 0)"}
        }
      }
    },
    "/v1/events": {
      "get": {
        "tags": ["operations"], "summary": "Server-sent events of the live view: a 'stats' event every http.events_interval_ms (rates, latency percentiles of the interval, batch size, queue, partitions, consumer lag, dead letters by reason, the model, the latest high scores); 'dropped' when this stream read too slowly and lost updates (with how many); 'end' when vigil shuts down. Try: curl -N http://host:8080/v1/events",
        "security": [{"bearerAuth": []}, {}],
        "parameters": [{"name": "access_token", "in": "query", "required": false, "schema": {"type": "string"}, "description": "The bearer token, for clients that cannot send headers (browsers' EventSource)"}],
        "responses": {
          "200": {"description": "The stream (Connection: close; it ends with the connection)", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"description": "The live view is off (http.max_event_subscribers = 0)"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v2/repository/index": {
      "post": {
        "tags": ["repository"], "summary": "Every version in the model repository and its state",
        "security": [{"adminAuth": []}],
        "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {"ready": {"type": "boolean", "description": "Only READY versions"}}}}}},
        "responses": {
          "200": {"description": "Versions, highest first", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/RepositoryEntry"}}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/Forbidden"},
          "422": {"$ref": "#/components/responses/Unprocessable"}
        }
      }
    },
    "/v2/repository/models/{model}/load": {
      "post": {
        "tags": ["repository"], "summary": "Serve a version (default: the highest), or shadow the served one with it; serving an older version is a rollback (the newer ones are marked unloaded)",
        "security": [{"adminAuth": []}],
        "parameters": [{"$ref": "#/components/parameters/Model"}],
        "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RepositoryRequest"}}}},
        "responses": {
          "200": {"description": "Loaded and swapped in between batches", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RepositoryAnswer"}}}},
          "400": {"description": "The version was refused (the reason is given); the served version stays", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/Forbidden"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "409": {"description": "The served version cannot also be its shadow", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "422": {"$ref": "#/components/responses/Unprocessable"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v2/repository/models/{model}/unload": {
      "post": {
        "tags": ["repository"], "summary": "Stop serving a version (default: the served one; the highest other version is served instead) or stop the shadow",
        "security": [{"adminAuth": []}],
        "parameters": [{"$ref": "#/components/parameters/Model"}],
        "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RepositoryRequest"}}}},
        "responses": {
          "200": {"description": "Unloaded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RepositoryAnswer"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "403": {"$ref": "#/components/responses/Forbidden"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "409": {"description": "It is the only version that can be served", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "422": {"$ref": "#/components/responses/Unprocessable"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/model/info": {
      "get": {
        "tags": ["operations"], "summary": "A served model (and its shadow): model.yaml as loaded, version, load time",
        "parameters": [{"$ref": "#/components/parameters/ModelQuery"}],
        "responses": {
          "200": {"description": "Model information", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelInfo"}}}},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/metrics": {
      "get": {
        "tags": ["operations"], "summary": "Prometheus metrics (text format 0.0.4)",
        "responses": {"200": {"description": "Metrics", "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}}}
      }
    },
    "/openapi.json": {
      "get": {
        "tags": ["operations"], "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {"schema": {"type": "object"}}}}}
      }
    }
  },
  "components": {
    "securitySchemes": {
      "bearerAuth": {"type": "http", "scheme": "bearer", "description": "The scoring token: required on the scoring routes, score lookups and the live view's stream when http.auth_token is set"},
      "adminAuth": {"type": "http", "scheme": "bearer", "description": "The admin token (http.admin_token): required on the repository routes, which are off (403) without one; the scoring token is refused (403)"}
    },
    "parameters": {
      "Model": {"name": "model", "in": "path", "required": true, "schema": {"type": "string"}, "description": "Model name (one of the models served: model.name and model.also_serve)"},
      "ModelQuery": {"name": "model", "in": "query", "required": false, "schema": {"type": "string"}, "description": "The model to use (one of model.name and model.also_serve); default: model.name. An unknown one is 404 naming the models served"},
      "Version": {"name": "version", "in": "path", "required": true, "schema": {"type": "string"}, "description": "Model version (the served version)"}
    },
    "responses": {
      "BadRequest": {"description": "The body is not valid JSON (or not HTTP)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unauthorized": {"description": "Bearer token missing (or, on scoring routes, wrong)", "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Forbidden": {"description": "Repository routes: not the admin token, or no admin token configured (http.admin_token)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "NotFound": {"description": "Unknown route, model or version", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "MethodNotAllowed": {"description": "Wrong method; Allow names the right one", "headers": {"Allow": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "PayloadTooLarge": {"description": "Body over http.max_body_bytes (refused from the headers when Content-Length says so); the connection is closed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unprocessable": {"description": "Valid JSON of the wrong shape: missing, unknown or duplicate feature, wrong type or count, NaN/Infinity, too many instances", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "InternalError": {"description": "A bug, or the model failed on an instance", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unavailable": {"description": "Queue full, shutting down, no model loaded, or not scored within http.request_timeout_ms; retry after Retry-After seconds", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    },
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string", "description": "What is wrong, naming the field or index"}}},
      "ArrayInstance": {"type": "array", "description": "Feature values in model order", "items": {"type": "number", "format": "float"}},
      "NamedInstance": {"type": "object", "description": "Feature values by name, plus an optional transaction_id (echoed, and the score is cached in Redis under it like a streamed score)", "additionalProperties": false, "properties": {"transaction_id": {"type": "string", "minLength": 1, "maxLength": 256}}},
      "PredictRequest": {"type": "object", "required": ["instances"], "properties": {"instances": {"type": "array", "minItems": 1, "description": "At most http.max_instances", "items": {"oneOf": [{"$ref": "#/components/schemas/ArrayInstance"}, {"$ref": "#/components/schemas/NamedInstance"}]}}, "explain": {"type": "boolean", "description": "Reason codes per prediction (also ?explain=true)"}, "top_k": {"type": "integer", "minimum": 1, "description": "Reason codes per prediction, at most the model's inputs (default 5; also ?top_k=k); more is 422"}}},
      "Reason": {"type": "object", "required": ["feature", "contribution"], "properties": {"feature": {"type": "string"}, "contribution": {"type": "number", "description": "d score / d input x (input - training mean)"}}},
      "Prediction": {"type": "object", "required": ["score", "is_fraud"], "properties": {"transaction_id": {"type": "string", "description": "When the instance had one"}, "score": {"type": "number", "format": "float"}, "is_fraud": {"type": "boolean", "description": "score >= the model's threshold"}, "model_version": {"type": "string", "description": "Only when a model swap split the request: the version that scored this instance (the top-level model_version is instance 0's)"}, "reasons": {"type": "array", "description": "With explain: the inputs that raised the score most, largest contribution first", "items": {"$ref": "#/components/schemas/Reason"}}}},
      "ScoreRecord": {"type": "object", "required": ["transaction_id", "score", "is_fraud", "model_name", "model_version", "scored_at_ms"], "properties": {"transaction_id": {"type": "string"}, "score": {"type": "number"}, "is_fraud": {"type": "boolean"}, "model_name": {"type": "string"}, "model_version": {"type": "string"}, "scored_at_ms": {"type": "integer"}, "event_time_ms": {"type": "integer"}, "source": {"type": "string", "enum": ["kafka", "http"], "description": "Where the score came from; an HTTP score never replaces a streamed transaction's record"}, "reasons": {"type": "array", "items": {"$ref": "#/components/schemas/Reason"}}}},
      "RepositoryEntry": {"type": "object", "required": ["name", "version", "state", "reason"], "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "state": {"type": "string", "enum": ["READY", "UNAVAILABLE"]}, "reason": {"type": "string", "description": "serving, shadow, or why the version is not loaded"}}},
      "RepositoryRequest": {"type": "object", "properties": {"parameters": {"type": "object", "properties": {"version": {"type": "string", "description": "A version number (a JSON number is accepted too)"}, "shadow": {"type": "boolean", "description": "load: shadow the served version instead of replacing it"}}}}},
      "RepositoryAnswer": {"type": "object", "required": ["name", "message"], "properties": {"name": {"type": "string"}, "message": {"type": "string"}}},
      "PredictResponse": {"type": "object", "required": ["predictions", "model_name", "model_version"], "properties": {"predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}, "model_name": {"type": "string"}, "model_version": {"type": "string"}}},
      "InferInputTensor": {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {"name": {"type": "string", "enum": ["features"]}, "shape": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2, "description": "[N, width], batch dimension first"}, "datatype": {"type": "string", "enum": ["FP32"]}, "data": {"type": "array", "description": "N*width numbers (row-major), or N arrays of width numbers", "items": {"oneOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]}}, "parameters": {"type": "object"}}},
      "InferRequestedOutput": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}}},
      "InferRequest": {"type": "object", "required": ["inputs"], "properties": {"id": {"type": "string", "description": "Echoed in the response"}, "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"$ref": "#/components/schemas/InferInputTensor"}}, "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/InferRequestedOutput"}}, "parameters": {"type": "object"}}},
      "InferOutputTensor": {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {"name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}, "description": "[N]"}, "datatype": {"type": "string", "enum": ["FP32"]}, "data": {"type": "array", "items": {"type": "number", "format": "float"}}}},
      "InferResponse": {"type": "object", "required": ["model_name", "model_version", "outputs"], "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"}, "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/InferOutputTensor"}}}},
      "ServerMetadata": {"type": "object", "required": ["name", "version", "extensions"], "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "extensions": {"type": "array", "items": {"type": "string"}}}},
      "TensorMetadata": {"type": "object", "required": ["name", "datatype", "shape"], "properties": {"name": {"type": "string"}, "datatype": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}}}},
      "ModelMetadata": {"type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"], "properties": {"name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}}, "platform": {"type": "string"}, "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/TensorMetadata"}}, "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/TensorMetadata"}}}},
      "ModelReady": {"type": "object", "required": ["name", "ready"], "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}}},
      "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok"]}}},
      "Live": {"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}},
      "Readiness": {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}, "failing": {"type": "array", "items": {"type": "string"}, "description": "The checks that fail"}}},
      "ModelInfo": {"type": "object", "required": ["name", "version", "inputs", "output", "threshold", "loaded_at_ms"], "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "description": {"type": "string"}, "inputs": {"type": "array", "items": {"type": "string"}, "description": "Feature names in model order"}, "output": {"type": "string"}, "threshold": {"type": "number"}, "device": {"type": "string"}, "loaded_at_ms": {"type": "integer", "description": "Load time, ms since the Unix epoch"}, "reason_codes": {"type": "boolean", "description": "model.yaml has a baseline, so scores can carry reasons"}, "model_yaml": {"type": "string", "description": "The model's model.yaml as read when this version was loaded"}, "shadow": {"type": "object", "nullable": true, "description": "The shadow version, null when none"}}}
    }
  }
})json";

}  // namespace

std::string openapi_document(const scoring::ModelInfo* model, const std::string& server_version) {
  json::value doc = json::parse(kDocument);
  doc.at("info").as_object()["version"] = server_version;
  if (model != nullptr) {
    auto& schemas = doc.at("components").at("schemas").as_object();
    const auto width = static_cast<int64_t>(model->width());

    auto& array_instance = schemas["ArrayInstance"].as_object();
    array_instance["minItems"] = width;
    array_instance["maxItems"] = width;
    array_instance["description"] =
        "The " + std::to_string(width) + " feature values in model order (see NamedInstance)";

    auto& named = schemas["NamedInstance"].as_object();
    auto& properties = named["properties"].as_object();
    json::array required;
    for (const auto& name : model->input_names) {
      properties[name] = json::object{{"type", "number"}, {"format", "float"}};
      required.emplace_back(name);
    }
    named["required"] = std::move(required);

    auto& tensor = schemas["InferInputTensor"].as_object()["properties"].as_object();
    tensor["shape"].as_object()["description"] =
        "[N, " + std::to_string(width) + "], batch dimension first";
    schemas["InferRequestedOutput"].as_object()["properties"].as_object()["name"] =
        json::object{{"type", "string"}, {"enum", json::array{model->output_name}}};
  }
  return json::serialize(doc);
}

}  // namespace vigil::http
