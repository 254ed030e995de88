#pragma once
// Splits a byte stream into lines. A watch body arrives in chunks that cut JSON events anywhere; the splitter
// keeps the unfinished tail and hands out whole lines. A line longer than the cap is an error rather than
// unbounded memory: one watch event is one object, and the API server rejects objects above ~1.5 MiB.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace poolguard::kube {

class LineSplitter {
 public:
  static constexpr size_t kDefaultMaxLine = size_t{32} * 1024 * 1024;
  explicit LineSplitter(size_t maxLineBytes = kDefaultMaxLine) : maxLine_(maxLineBytes) {}

  void feed(std::string_view bytes) { buf_.append(bytes); }

  // The next complete line without its "\n" or "\r\n"; std::nullopt when only a partial line is buffered; an
  // Error once a line (complete or not) exceeds the cap.
  Result<std::optional<std::string>> next();

  // The unterminated rest, for the end of the stream.
  std::string takeRemainder();
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  Error tooLong(size_t size) const;

  size_t maxLine_;
  std::string buf_;
  size_t pos_ = 0;       // start of the first unconsumed line
  size_t scanFrom_ = 0;  // bytes before this (and after pos_) are known to hold no '\n'
};

}  // namespace poolguard::kube
