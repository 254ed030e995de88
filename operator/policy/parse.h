#pragma once
// Reading policies (and the other objects offline commands take) from YAML or JSON text.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "policy/types.h"

namespace poolguard::policy {

using json = nlohmann::json;

struct FieldError {
  std::string field;    // JSON path as the API server prints it: "spec.pool.minIdle"
  std::string message;  // what is wrong and how to fix it
};

struct Document {
  std::string source;  // file name or "-" for standard input
  int index = 0;       // 0-based position of the document in the source
  json object;
};

// Splits multi-document YAML (or a single JSON value, or a v1 List) into objects. Empty documents are skipped.
// Caps nesting depth and size so hostile input fails with an error instead of exhausting the stack or memory.
Result<std::vector<Document>> parseDocuments(const std::string& text, const std::string& source);

// Reads a file ("-" = standard input) and parses it with parseDocuments.
Result<std::vector<Document>> readDocuments(const std::string& path);

// Converts a ConnectionPoolPolicy object to the model, applying defaults. Returns every problem the API server
// would report (schema and CEL rules, same messages), so `poolguard validate` and admission agree.
Result<Policy> fromJson(const json& obj, std::vector<FieldError>* errors = nullptr);

// Only the checks, on the raw object (before defaults), in field-path order.
std::vector<FieldError> validate(const json& obj);

// The model back to its API JSON form (spec with defaults filled in).
json toJson(const Policy& p);

// Go-style durations as the API takes them: "300ms", "30s", "10m", "1h30m", "0s". Errors name the input.
Result<Millis> parseDuration(const std::string& text);
// Shortest Go-style form: 30000ms -> "30s", 90000ms -> "1m30s", 0 -> "0s".
std::string formatDuration(Millis d);

}  // namespace poolguard::policy
