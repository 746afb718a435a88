#include "dfhook/io/document_batches.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using dfhook::io::DocumentBatch;
using dfhook::io::DocumentBatchReader;
using dfhook::test::TempDir;
using dfhook::test::write_bytes;

namespace {

struct Seen {
  std::size_t input;
  std::size_t number;
  std::size_t line;
  std::string text;
};

}  // namespace

TEST_CASE("documents of every input come in input order with their positions") {
  TempDir dir;
  std::string many;
  for (int i = 0; i < 1000; ++i) {
    many += "{\"n\":" + std::to_string(i) + "}\n";
  }
  write_bytes(dir / "a.json", "{\"a\":1} {\"a\":2}\n{\"a\":3}");
  write_bytes(dir / "b.json", many);
  write_bytes(dir / "empty.json", "\n");
  DocumentBatchReader reader({(dir / "a.json").string(), (dir / "missing.json").string(),
                              (dir / "b.json").string(), (dir / "empty.json").string()});
  std::vector<Seen> seen;
  std::vector<std::string> errors;
  std::vector<std::size_t> empty_inputs;
  std::size_t batches = 0;
  while (DocumentBatch* batch = reader.next()) {
    ++batches;
    for (std::size_t i = 0; i < batch->count; ++i) {
      const auto& document = batch->documents[i];
      CHECK_FALSE(document.problem);
      seen.push_back({batch->input, document.number, document.start.line, document.text});
    }
    if (!batch->error.empty()) {
      errors.push_back(batch->error);
    }
    if (batch->empty_input) {
      empty_inputs.push_back(batch->input);
    }
    reader.give_back(batch);
  }
  REQUIRE(seen.size() == 1003);
  CHECK(seen[0].text == "{\"a\":1}");
  CHECK(seen[2].line == 2);
  CHECK(seen[3].input == 2);
  CHECK(seen[1002].number == 1000);
  CHECK(seen[1002].line == 1000);
  CHECK(seen[1002].text == "{\"n\":999}");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "cannot read '" + (dir / "missing.json").string() + "': No such file or directory");
  CHECK(empty_inputs == std::vector<std::size_t>{3});
  CHECK(batches > 4);  // the batches went round: more were read than exist
  CHECK(reader.next() == nullptr);
}

TEST_CASE("a reader left before the end stops and is joined") {
  TempDir dir;
  std::string many;
  for (int i = 0; i < 100000; ++i) {
    many += "{}\n";
  }
  write_bytes(dir / "many.json", many);
  DocumentBatchReader reader({(dir / "many.json").string()});
  DocumentBatch* batch = reader.next();
  REQUIRE(batch != nullptr);
  CHECK(batch->count > 0);
}
