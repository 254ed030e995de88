#pragma once
// Standard base64 (RFC 4648 alphabet) as Kubernetes carries bytes in text: Secret data and kubeconfig's
// *-data fields.
#include <optional>
#include <string>
#include <string_view>

namespace poolguard {

// Decodes `in`; std::nullopt when it is not base64. Whitespace (wrapped lines) is ignored and padding is
// optional, but when present it is one or two '=' that end the input and complete the last group of four.
// A lone symbol in the last group (no whole byte) is rejected.
std::optional<std::string> decodeBase64(std::string_view in);

}  // namespace poolguard
