#pragma once

#include "dfhook/core/verification.hpp"

#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

// The input side of verify-payload: every input read in chunks, its documents framed and
// prepared on a thread of their own, handed to the caller in batches, in input order.

namespace dfhook::io {

// Documents of one input, framed and prepared (core::prepare_document), ready for judging.
struct DocumentBatch {
  std::size_t input = 0;  // index of the input in the list given to DocumentBatchReader
  std::vector<core::PreparedDocument> documents;  // the first `count` are this batch's
  std::size_t count = 0;
  std::size_t bytes = 0;
  bool input_end = false;    // the last batch of its input
  bool empty_input = false;  // input_end: the input held no document
  std::string error;         // input_end: why the input could not be read to its end
  bool last = false;         // no batch follows

  core::PreparedDocument& next_slot();
  void clear(std::size_t new_input);
};

// Reads each input ("-": standard input) in 64 KiB chunks on its own thread and frames its
// documents with core::DocumentStream. At most a few batches exist, so memory stays flat
// however many documents come. An input that cannot be opened or read ends with a batch whose
// `error` says so ("cannot read 'x': No such file or directory"); the next input follows.
class DocumentBatchReader {
public:
  explicit DocumentBatchReader(std::vector<std::string> inputs);
  // Stops the reader thread and waits for it.
  ~DocumentBatchReader();
  DocumentBatchReader(const DocumentBatchReader&) = delete;
  DocumentBatchReader& operator=(const DocumentBatchReader&) = delete;

  // The next batch, waiting for it; null after the one marked `last`. Rethrows what the reader
  // thread failed with (std::bad_alloc).
  [[nodiscard]] DocumentBatch* next();
  // Returns a batch taken with next() for reuse; it must not be used afterwards.
  void give_back(DocumentBatch* batch);
  // True when next() would not wait.
  [[nodiscard]] bool ready() const;

private:
  class Queue;
  class Reader;

  std::vector<std::string> m_inputs;
  std::vector<DocumentBatch> m_batches;
  std::unique_ptr<Queue> m_ready;
  std::unique_ptr<Queue> m_free;
  std::unique_ptr<Reader> m_reader;
  std::exception_ptr m_error;
  bool m_done = false;
  std::thread m_thread;
};

}  // namespace dfhook::io
