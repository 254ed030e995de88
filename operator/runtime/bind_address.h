#pragma once
// The --metrics-bind-address and --health-probe-bind-address values, as controller-runtime takes them:
// "host:port", ":port" (every interface), "[ipv6]:port", a bare port, or "0" / "" to disable the endpoint.
#include <optional>
#include <string>

#include "common/result.h"

namespace poolguard::runtime {

struct BindAddress {
  std::string host;  // "0.0.0.0" for every interface; an IPv6 literal without brackets
  int port = 0;      // 1..65535

  // "host:port" ("[::1]:8080" for IPv6), the form the metrics and health servers listen on.
  std::string toString() const;
};

// nullopt when the endpoint is disabled. Errors (kInvalidArgument) name the flag, the value and the form expected.
Result<std::optional<BindAddress>> parseBindAddress(const std::string& flag, const std::string& value);

}  // namespace poolguard::runtime
