#pragma once
// Reading policies (and the other objects offline commands take) from YAML or JSON text.
#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "policy/types.h"

namespace poolguard::policy {

using json = nlohmann::json;

// Limits on untrusted input. A policy is a few dozen lines; these leave room for large Lists while keeping a
// hostile file from exhausting the stack (nesting) or memory (size, alias expansion).
inline constexpr std::size_t kMaxInputBytes = 8 * 1024 * 1024;
inline constexpr int kMaxNestingDepth = 64;
inline constexpr std::size_t kMaxNodes = 250'000;

struct FieldError {
  std::string field;    // JSON path as the API server prints it: "spec.pool.minIdle"
  std::string message;  // what is wrong and how to fix it: "Invalid value: 20: minIdle must be <= maxSize; ..."
};

// "field: message", the line the API server prints for one cause.
std::string toString(const FieldError& e);

struct Document {
  std::string source;  // file name or "-" for standard input
  int index = 0;       // 0-based position of the YAML document in the source (items of a List share it)
  json object;
  // Plain YAML scalars read as booleans, numbers or null, as written, by JSON pointer into `object`
  // ("/metadata/name" -> "on"), so a type error can show the quoted form that fixes it. Empty for JSON input.
  std::map<std::string, std::string> spellings;
};

// Splits multi-document YAML (or a single JSON value, or a v1 List) into objects. Empty documents are skipped.
// Caps nesting depth and size so hostile input fails with an error instead of exhausting the stack or memory.
// Plain YAML scalars are typed the way kubectl reads them (YAML 1.1: true/yes/on are booleans, 0x1F and 017 are
// integers, ~ and null are null); quoted scalars and scalars tagged !!str are always strings. Duplicate
// keys are an error, as in kubectl.
Result<std::vector<Document>> parseDocuments(const std::string& text, const std::string& source);

// Reads a file ("-" = standard input) and parses it with parseDocuments.
Result<std::vector<Document>> readDocuments(const std::string& path);

// Converts a ConnectionPoolPolicy or ClusterConnectionPoolPolicy object to the model, applying defaults. Returns every
// problem the API server would report (schema and CEL rules, same messages), so `poolguard validate` and admission
// agree. On failure the Error (kInvalid) lists every cause, and *errors, when given, receives them.
Result<Policy> fromJson(const json& obj, std::vector<FieldError>* errors = nullptr);

// The same for a ClusterConnectionBudget (cluster scoped: metadata.name is the database's name).
Result<ClusterBudget> budgetFromJson(const json& obj, std::vector<FieldError>* errors = nullptr);
std::vector<FieldError> validateBudget(const json& obj);

// Only the checks, on the raw object (before defaults), in field-path order. Rules that the API server
// evaluates after defaulting (maxLifetime against a defaulted idleTimeout, ...) see the defaults here too.
std::vector<FieldError> validate(const json& obj);

// The object with the CRD's structural defaults filled in, as the API server stores it. Values of the wrong
// type are left alone (validate reports them).
json applyDefaults(const json& obj);
json applyBudgetDefaults(const json& obj);

// The model back to its API JSON form (spec with defaults filled in).
json toJson(const Policy& p);

// Go-style durations as the API takes them: "300ms", "30s", "10m", "1h30m", "0s". Errors name the input.
// Negative durations, a sign, unknown units and values beyond int64 nanoseconds are rejected.
Result<std::chrono::nanoseconds> parseDurationNanos(const std::string& text);
// As parseDurationNanos, truncated to whole milliseconds (the model's resolution).
Result<Millis> parseDuration(const std::string& text);
// Shortest Go-style form: 30000ms -> "30s", 90000ms -> "1m30s", 3600000ms -> "1h", 1500ms -> "1.5s", 0 -> "0s".
std::string formatDuration(Millis d);

}  // namespace poolguard::policy
