#include "dfhook/core/document_stream.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using dfhook::core::DocumentStream;
using dfhook::core::LineColumn;
using dfhook::core::StreamItem;

namespace doctest {
template <>
struct StringMaker<LineColumn> {
  static String convert(const LineColumn& at) {
    return (std::to_string(at.line) + ":" + std::to_string(at.column)).c_str();
  }
};
}  // namespace doctest

namespace {

// What a test compares: the item with its text copied and the problem's absolute position.
struct Seen {
  std::size_t number = 0;
  std::size_t offset = 0;
  LineColumn start;
  std::string text;
  bool ok = false;
  bool framed = false;
  std::string pointer;
  std::string reason;
  LineColumn problem_at;
  std::string first_key;  // of a valid object document
};

void collect(DocumentStream& stream, std::vector<Seen>& seen) {
  StreamItem item;
  while (stream.next(item) == DocumentStream::Status::item) {
    Seen s;
    s.number = item.number;
    s.offset = item.offset;
    s.start = item.start;
    s.text = std::string(item.text);
    s.ok = !item.problem;
    s.framed = item.framed;
    if (item.problem) {
      s.pointer = item.problem->pointer;
      s.reason = item.problem->reason;
      s.problem_at = dfhook::core::line_column(item.text, item.problem->offset, item.start);
    } else if (stream.json().root().is_object() && stream.json().root().size() > 0) {
      s.first_key = std::string((*stream.json().root().children().begin()).key());
    }
    seen.push_back(std::move(s));
  }
}

// Every item of `input` fed in chunks of `chunk` bytes.
std::vector<Seen> read_all(std::string_view input, std::size_t chunk = 1 << 16,
                           std::size_t max_document = dfhook::core::k_default_max_document) {
  DocumentStream stream(max_document);
  std::vector<Seen> seen;
  for (std::size_t at = 0; at < input.size(); at += chunk) {
    stream.feed(input.substr(at, chunk));
    collect(stream, seen);
  }
  stream.finish();
  collect(stream, seen);
  StreamItem item;
  CHECK(stream.next(item) == DocumentStream::Status::end);
  return seen;
}

bool same(const std::vector<Seen>& a, const std::vector<Seen>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("item " << i << ": " << a[i].text << " | " << b[i].text << " | " << a[i].reason << " | "
                 << b[i].reason);
    if (a[i].number != b[i].number || a[i].offset != b[i].offset || a[i].start != b[i].start ||
        a[i].text != b[i].text || a[i].ok != b[i].ok || a[i].reason != b[i].reason ||
        a[i].problem_at != b[i].problem_at || a[i].first_key != b[i].first_key) {
      FAIL_CHECK("items differ");
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("reads documents one per line, with their offsets and positions") {
  const std::string input = "{\"a\":1}\n{\"b\":2}\r\n\n  {\"c\":3}\n";
  const std::vector<Seen> seen = read_all(input);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].number == 1);
  CHECK(seen[0].text == "{\"a\":1}");
  CHECK(seen[0].offset == 0);
  CHECK(seen[0].start == LineColumn{1, 1});
  CHECK(seen[0].first_key == "a");
  CHECK(seen[1].number == 2);
  CHECK(seen[1].offset == 8);
  CHECK(seen[1].start == LineColumn{2, 1});
  CHECK(seen[2].offset == 20);
  CHECK(seen[2].start == LineColumn{4, 3});
  CHECK(seen[2].first_key == "c");
}

TEST_CASE("reads concatenated and pretty-printed documents") {
  const std::string input = "{\"a\":1}{\"b\":2} [3]\n{\n  \"d\": {\n    \"e\": 4\n  }\n}";
  const std::vector<Seen> seen = read_all(input);
  REQUIRE(seen.size() == 4);
  CHECK(seen[1].text == "{\"b\":2}");
  CHECK(seen[1].start == LineColumn{1, 8});
  CHECK(seen[2].text == "[3]");
  CHECK(seen[3].start == LineColumn{2, 1});
  CHECK(seen[3].first_key == "d");
}

TEST_CASE("gives the same items however the input is cut into chunks") {
  const std::string input =
      "{\"a\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}\n12345\n{\"b\":[true,null,false]} \"str\" "
      "{\"c\":1 x}\n{\"d\":-7.5e3}\n[1,\n2]\ntrue 0 {\"e\":\"\\u00e9\"}";
  const std::vector<Seen> whole = read_all(input);
  REQUIRE(whole.size() == 10);
  CHECK(whole[1].text == "12345");
  CHECK(whole[6].text == "[1,\n2]");
  for (const std::size_t chunk : {1, 2, 3, 5, 7, 16}) {
    CAPTURE(chunk);
    CHECK(same(read_all(input, chunk), whole));
  }
}

TEST_CASE("reports a broken line and resumes at the next line starting with '{'") {
  const std::string input = "{\"a\":1}\n{\"b\":2, oops}\n  {\"not\":\"resumed here\"}\n{\"c\":3}\n";
  const std::vector<Seen> seen = read_all(input);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].ok);
  CHECK_FALSE(seen[1].ok);
  CHECK_FALSE(seen[1].framed);
  CHECK(seen[1].number == 2);
  CHECK(seen[1].start == LineColumn{2, 1});
  CHECK(seen[1].reason == "expected a member name in double quotes");
  CHECK(seen[1].problem_at == LineColumn{2, 9});
  CHECK(seen[1].text == "{\"b\":2, ");
  CHECK(seen[2].ok);
  CHECK(seen[2].number == 3);
  CHECK(seen[2].start == LineColumn{4, 1});
  CHECK(seen[2].first_key == "c");
}

TEST_CASE("a truncated line costs that line only") {
  const std::vector<Seen> seen = read_all("{\"a\":\n{\"b\":2}\n{\"c\":3}\n");
  REQUIRE(seen.size() == 3);
  CHECK_FALSE(seen[0].ok);
  CHECK(seen[1].first_key == "b");
  CHECK(seen[1].start == LineColumn{2, 1});
  CHECK(seen[2].first_key == "c");
}

TEST_CASE("garbage before the first document is one problem") {
  const std::vector<Seen> seen = read_all("garbage\nmore\n{\"a\":1}");
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].reason == "expected a JSON value");
  CHECK(seen[0].problem_at == LineColumn{1, 1});
  CHECK(seen[1].first_key == "a");
  CHECK(seen[1].start == LineColumn{3, 1});
}

TEST_CASE("a document breaking a strict rule is framed and the next one on its line read") {
  const std::vector<Seen> seen =
      read_all("{\"a\":1,\"a\":2} {\"b\":18446744073709551616}{\"c\":3}");
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].reason == "duplicate member name 'a'");
  CHECK(seen[0].framed);
  CHECK(seen[0].pointer == "/a");
  CHECK(seen[0].problem_at == LineColumn{1, 8});
  CHECK(seen[1].pointer == "/b");
  CHECK(seen[1].problem_at == LineColumn{1, 20});
  CHECK(seen[2].first_key == "c");
}

TEST_CASE("a document nested too deep is a problem and reading resumes") {
  const std::string input = std::string(70, '[') + std::string(70, ']') + "\n{\"a\":1}";
  const std::vector<Seen> seen = read_all(input, 16);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].reason == "nesting deeper than 64 levels");
  CHECK(seen[0].problem_at == LineColumn{1, 65});
  CHECK(seen[1].first_key == "a");
}

TEST_CASE("the end of the input inside a document is a problem") {
  const std::vector<Seen> seen = read_all("{\"a\":1}\n{\"b\":[1,2");
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].reason == "unexpected end of the document");
  CHECK(seen[1].problem_at == LineColumn{2, 10});
}

TEST_CASE("invalid UTF-8 is found even when a chunk ends inside the sequence") {
  const std::string input = "{\"a\":\"\xE2\x82\"}\n{\"b\":1}";
  for (const std::size_t chunk : {1, 8, 100}) {
    const std::vector<Seen> seen = read_all(input, chunk);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].reason == "invalid UTF-8");
    CHECK(seen[0].problem_at == LineColumn{1, 7});
    CHECK(seen[1].first_key == "b");
  }
}

TEST_CASE("a document over the size limit is a problem, and reading resumes after it") {
  const std::string big = "{\"a\":\"" + std::string(5000, 'x') + "\"}\n";
  const std::string input = "{\"s\":1}\n" + big + big + "{\"t\":2}\n";
  for (const std::size_t chunk : {64, 1000, 100000}) {
    CAPTURE(chunk);
    const std::vector<Seen> seen = read_all(input, chunk, 1024);
    REQUIRE(seen.size() == 4);
    CHECK(seen[0].first_key == "s");
    CHECK(seen[1].reason == "document larger than the limit of 1024 bytes");
    CHECK(seen[1].start == LineColumn{2, 1});
    CHECK(seen[2].reason == "document larger than the limit of 1024 bytes");
    CHECK(seen[2].start == LineColumn{3, 1});
    CHECK(seen[3].first_key == "t");
    CHECK(seen[3].start == LineColumn{4, 1});
  }
}

TEST_CASE("memory holds the unread input, not the documents already read") {
  DocumentStream stream;
  std::string chunk;
  for (int i = 0; i < 100; ++i) {
    chunk += "{\"n\":" + std::to_string(i) + "}\n";
  }
  StreamItem item;
  std::size_t count = 0;
  for (int round = 0; round < 1000; ++round) {
    stream.feed(chunk);
    while (stream.next(item) == DocumentStream::Status::item) {
      ++count;
    }
    CHECK(stream.buffered() <= chunk.size());
    CHECK(stream.between_documents());
  }
  CHECK(count == 100000);
  CHECK(stream.consumed() == chunk.size() * 1000);
}

TEST_CASE("a large document fed in small chunks is read in linear time") {
  std::string input = "[";
  for (int i = 0; i < 200000; ++i) {
    input += "1,";
  }
  input += "1]";
  const std::vector<Seen> seen = read_all(input, 64);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].ok);
}

TEST_CASE("tells whether the input so far ends between documents") {
  DocumentStream stream;
  StreamItem item;
  stream.feed("{\"a\":1}\n{\"b\"");
  REQUIRE(stream.next(item) == DocumentStream::Status::item);
  CHECK(stream.next(item) == DocumentStream::Status::need_more);
  CHECK_FALSE(stream.between_documents());
  stream.feed(":2}\n  ");
  REQUIRE(stream.next(item) == DocumentStream::Status::item);
  CHECK(stream.next(item) == DocumentStream::Status::need_more);
  CHECK(stream.between_documents());
  // A number at the end may go on.
  stream.feed("12");
  CHECK(stream.next(item) == DocumentStream::Status::need_more);
  CHECK_FALSE(stream.between_documents());
  stream.feed("3\n");
  REQUIRE(stream.next(item) == DocumentStream::Status::item);
  CHECK(item.text == "123");
}

TEST_CASE("an empty input has no items") {
  CHECK(read_all("").empty());
  CHECK(read_all(" \n\t\r\n").empty());
}
