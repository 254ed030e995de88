#include "kube/line_splitter.h"

#include <algorithm>

namespace poolguard::kube {

Error LineSplitter::tooLong(size_t size) const {
  return Error(ErrorCode::kInternal, "stream line of " + std::to_string(size) + " bytes or more exceeds the limit of " +
                                         std::to_string(maxLine_) + " bytes");
}

Result<std::optional<std::string>> LineSplitter::next() {
  size_t nl = buf_.find('\n', std::max(scanFrom_, pos_));
  if (nl == std::string::npos) {
    scanFrom_ = buf_.size();
    // A line at the cap may have its CR here and its LF in the next chunk.
    const size_t pending = buf_.size() - pos_;
    if (pending > maxLine_ && !(pending == maxLine_ + 1 && buf_.back() == '\r')) return tooLong(pending);
    // Compact only when the consumed prefix dominates, so a run of small lines stays linear.
    if (pos_ > 0 && pos_ >= buf_.size() / 2) {
      buf_.erase(0, pos_);
      scanFrom_ -= pos_;
      pos_ = 0;
    }
    return std::optional<std::string>{};
  }
  size_t end = nl;
  if (end > pos_ && buf_[end - 1] == '\r') --end;
  if (end - pos_ > maxLine_) return tooLong(end - pos_);
  std::optional<std::string> line(buf_.substr(pos_, end - pos_));
  pos_ = nl + 1;
  scanFrom_ = pos_;
  return line;
}

std::string LineSplitter::takeRemainder() {
  std::string rest = buf_.substr(pos_);
  if (!rest.empty() && rest.back() == '\r') rest.pop_back();
  buf_.clear();
  pos_ = scanFrom_ = 0;
  return rest;
}

}  // namespace poolguard::kube
