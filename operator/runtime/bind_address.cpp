#include "runtime/bind_address.h"

#include <charconv>

namespace poolguard::runtime {

std::string BindAddress::toString() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

Result<std::optional<BindAddress>> parseBindAddress(const std::string& flag, const std::string& value) {
  if (value.empty() || value == "0") return std::optional<BindAddress>();
  auto invalid = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument,
                 flag + " \"" + value + "\": " + why + "; use HOST:PORT, :PORT for every interface, or 0 to disable");
  };
  BindAddress a;
  std::string portText;
  if (value.front() == '[') {
    auto close = value.find(']');
    if (close == std::string::npos) return invalid("an IPv6 address opened with [ is not closed with ]");
    a.host = value.substr(1, close - 1);
    if (a.host.empty()) return invalid("the IPv6 address between [ and ] is empty");
    if (close + 1 >= value.size() || value[close + 1] != ':') return invalid("no :PORT after the IPv6 address");
    portText = value.substr(close + 2);
  } else {
    auto colon = value.rfind(':');
    if (colon == std::string::npos) {
      portText = value;
    } else {
      a.host = value.substr(0, colon);
      if (a.host.find(':') != std::string::npos) return invalid("write an IPv6 address in brackets, [::1]:8080");
      portText = value.substr(colon + 1);
    }
  }
  if (a.host.empty()) a.host = "0.0.0.0";
  int port = 0;
  auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (portText.empty() || ec != std::errc() || end != portText.data() + portText.size()) {
    return invalid("the port \"" + portText + "\" is not a number");
  }
  if (port < 1 || port > 65535) return invalid("the port must be between 1 and 65535");
  a.port = port;
  return std::optional<BindAddress>(a);
}

}  // namespace poolguard::runtime
