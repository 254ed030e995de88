#include "offline/text_table.h"

#include <algorithm>

namespace poolguard::offline {

void printTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out, const std::string& indent) {
  std::vector<size_t> widths;
  for (const auto& r : rows) {
    if (widths.size() < r.size()) widths.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line = indent;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(widths[i] - r[i].size() + 2, ' ');
    }
    // A last column left empty leaves no trailing spaces.
    while (line.size() > indent.size() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

}  // namespace poolguard::offline
