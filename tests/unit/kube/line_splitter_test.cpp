#include "kube/line_splitter.h"

#include <gtest/gtest.h>

namespace poolguard::kube {
namespace {

std::vector<std::string> drain(LineSplitter& s) {
  std::vector<std::string> out;
  while (true) {
    auto line = s.next();
    EXPECT_TRUE(line.ok()) << line.error().message();
    if (!line.ok() || !*line) return out;
    out.push_back(**line);
  }
}

TEST(LineSplitter, WholeLinesInOneChunk) {
  LineSplitter s;
  s.feed("{\"a\":1}\n{\"b\":2}\n");
  EXPECT_EQ(drain(s), (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(LineSplitter, LinesCutAnywhere) {
  const std::string stream = "first line\nsecond\n\nthird one is longer\n";
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    LineSplitter s;
    std::vector<std::string> lines;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      s.feed(std::string_view(stream).substr(i, chunk));
      for (auto& l : drain(s)) lines.push_back(l);
    }
    EXPECT_EQ(lines, (std::vector<std::string>{"first line", "second", "", "third one is longer"})) << chunk;
  }
}

TEST(LineSplitter, CrLf) {
  LineSplitter s;
  s.feed("a\r\nb\r");
  EXPECT_EQ(drain(s), std::vector<std::string>{"a"});
  s.feed("\nc\n");
  EXPECT_EQ(drain(s), (std::vector<std::string>{"b", "c"}));
}

TEST(LineSplitter, PartialLineWaits) {
  LineSplitter s;
  s.feed("{\"type\":\"ADD");
  auto line = s.next();
  ASSERT_TRUE(line.ok());
  EXPECT_FALSE(*line);
  EXPECT_EQ(s.buffered(), 12u);
  s.feed("ED\"}\n");
  EXPECT_EQ(drain(s), std::vector<std::string>{"{\"type\":\"ADDED\"}"});
}

TEST(LineSplitter, RemainderAtEndOfStream) {
  LineSplitter s;
  s.feed("a\nunterminated\r");
  EXPECT_EQ(drain(s), std::vector<std::string>{"a"});
  EXPECT_EQ(s.takeRemainder(), "unterminated");
  EXPECT_EQ(s.takeRemainder(), "");
}

TEST(LineSplitter, LineAtTheCapPasses) {
  LineSplitter s(8);
  s.feed("12345678\n");
  EXPECT_EQ(drain(s), std::vector<std::string>{"12345678"});
}

TEST(LineSplitter, CompleteLineOverTheCapFails) {
  LineSplitter s(8);
  s.feed("ok\n123456789\n");
  auto first = s.next();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(**first, "ok");
  auto second = s.next();
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message().find("exceeds the limit of 8 bytes"), std::string::npos);
}

TEST(LineSplitter, UnterminatedLineOverTheCapFailsBeforeItEnds) {
  LineSplitter s(1024);
  for (int i = 0; i < 10; ++i) {
    s.feed(std::string(100, 'x'));
    ASSERT_TRUE(s.next().ok());
  }
  s.feed(std::string(100, 'x'));
  EXPECT_FALSE(s.next().ok());
}

TEST(LineSplitter, ManyLinesStayCorrectAcrossCompaction) {
  LineSplitter s;
  std::string expectedLast;
  size_t count = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string line = "{\"n\":" + std::to_string(i) + "}";
    // Cut each line in two, so every feed leaves a partial tail behind.
    s.feed(line.substr(0, 3));
    for (auto& l : drain(s)) {
      ++count;
      expectedLast = l;
    }
    s.feed(line.substr(3) + "\n");
    for (auto& l : drain(s)) {
      ++count;
      expectedLast = l;
      EXPECT_EQ(l, line);
    }
  }
  EXPECT_EQ(count, 5000u);
  EXPECT_EQ(expectedLast, "{\"n\":4999}");
}

}  // namespace
}  // namespace poolguard::kube
