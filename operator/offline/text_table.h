#pragma once
// Aligned text columns for the commands' text output (plan, status).
#include <ostream>
#include <string>
#include <vector>

namespace poolguard::offline {

// Prints `rows` with each column as wide as its widest cell plus two spaces, every line after `indent`.
void printTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out, const std::string& indent = "");

}  // namespace poolguard::offline
