// The OpenAPI 3 document served at GET /openapi.json.
#pragma once

#include <string>

#include "scoring/model.h"

namespace vigil::http {

// Describes every route, request and response schema. With a model, the instance schemas name
// its features (and the array forms state its width); without one they stay generic.
std::string openapi_document(const scoring::ModelInfo* model, const std::string& server_version);

}  // namespace vigil::http
