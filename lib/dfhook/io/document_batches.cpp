#include "dfhook/io/document_batches.hpp"

#include "dfhook/core/document_stream.hpp"
#include "dfhook/io/file.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>

namespace dfhook::io {

namespace {

// Inputs are read in chunks of this size, so memory does not depend on the input's size.
constexpr std::size_t k_read_chunk = 64 * 1024;
// A batch is handed over when it holds this many documents or bytes.
constexpr std::size_t k_batch_documents = 256;
constexpr std::size_t k_batch_bytes = 256 * 1024;
// Batches in flight between the reader and the caller; bounds the memory of the pipeline.
constexpr std::size_t k_batches = 4;

}  // namespace

core::PreparedDocument& DocumentBatch::next_slot() {
  if (count == documents.size()) {
    documents.emplace_back();
  }
  return documents[count++];
}

void DocumentBatch::clear(std::size_t new_input) {
  input = new_input;
  count = 0;
  bytes = 0;
  input_end = false;
  empty_input = false;
  error.clear();
  last = false;
}

// A queue of batches between two threads; never holds more than the k_batches that exist.
class DocumentBatchReader::Queue {
public:
  void push(DocumentBatch* batch) {
    {
      const std::lock_guard lock(m_mutex);
      m_batches.push_back(batch);
    }
    m_ready.notify_one();
  }
  // Null once stop() was called and the queue is empty.
  DocumentBatch* pop() {
    std::unique_lock lock(m_mutex);
    m_ready.wait(lock, [&] { return !m_batches.empty() || m_stopped; });
    if (m_batches.empty()) {
      return nullptr;
    }
    DocumentBatch* batch = m_batches.front();
    m_batches.pop_front();
    return batch;
  }
  [[nodiscard]] bool empty() const {
    const std::lock_guard lock(m_mutex);
    return m_batches.empty();
  }
  void stop() {
    {
      const std::lock_guard lock(m_mutex);
      m_stopped = true;
    }
    m_ready.notify_all();
  }

private:
  mutable std::mutex m_mutex;
  std::condition_variable m_ready;
  std::deque<DocumentBatch*> m_batches;
  bool m_stopped = false;
};

// Reads every input in chunks, frames its documents and prepares them for judging, in input
// order, on its own thread; the caller gets them through `ready` and gives them back through
// `free`.
class DocumentBatchReader::Reader {
public:
  Reader(const std::vector<std::string>& files, Queue& ready, Queue& free)
      : m_files(files), m_ready(ready), m_free(free), m_chunk(k_read_chunk, '\0') {}

  void run() {
    m_batch = m_free.pop();
    for (std::size_t input = 0; input < m_files.size() && m_batch != nullptr; ++input) {
      m_batch->clear(input);
      read_input(input);
    }
    if (m_batch != nullptr) {
      m_batch->last = true;
      m_ready.push(m_batch);
    }
  }

private:
  void hand_over() {
    const std::size_t input = m_batch->input;
    m_ready.push(m_batch);
    m_batch = m_free.pop();
    if (m_batch != nullptr) {
      m_batch->clear(input);
    }
  }

  // False when the judge stopped.
  bool drain() {
    core::StreamItem item;
    while (m_stream.next(item) == core::DocumentStream::Status::item) {
      ++m_documents;
      core::PreparedDocument& document = m_batch->next_slot();
      core::prepare_document(item, m_stream.json(), document);
      m_batch->bytes += document.text.size();
      if (m_batch->count == k_batch_documents || m_batch->bytes >= k_batch_bytes) {
        hand_over();
        if (m_batch == nullptr) {
          return false;
        }
      }
    }
    return true;
  }

  void read_input(std::size_t input) {
    const std::string& file = m_files[input];
    m_stream.reset();
    m_documents = 0;
    int fd = STDIN_FILENO;
    if (file != "-") {
      fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        finish_input(unreadable_message(file, errno));
        return;
      }
    }
    std::string error;
    for (;;) {
      const ssize_t got = ::read(fd, m_chunk.data(), m_chunk.size());
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0) {
        error = unreadable_message(file, errno);
        break;
      }
      if (got == 0) {
        m_stream.finish();
      } else {
        m_stream.feed(std::string_view(m_chunk.data(), static_cast<std::size_t>(got)));
      }
      if (!drain()) {
        break;
      }
      if (got == 0) {
        break;
      }
      // Whatever a short read completed is judged now: a terminal or a slow pipe gets its answer
      // as soon as a document is complete. A full read means more input is waiting, and the
      // batch fills up first (fewer hand-overs, and fewer wake-ups of the judge).
      if (m_batch->count > 0 && static_cast<std::size_t>(got) < m_chunk.size()) {
        hand_over();
        if (m_batch == nullptr) {
          break;
        }
      }
    }
    if (fd != STDIN_FILENO) {
      ::close(fd);
    }
    if (m_batch != nullptr) {
      finish_input(std::move(error));
    }
  }

  void finish_input(std::string error) {
    m_batch->input_end = true;
    m_batch->empty_input = error.empty() && m_documents == 0;
    m_batch->error = std::move(error);
    hand_over();
  }

  const std::vector<std::string>& m_files;
  Queue& m_ready;
  Queue& m_free;
  core::DocumentStream m_stream;
  std::string m_chunk;
  DocumentBatch* m_batch = nullptr;
  std::size_t m_documents = 0;
};

DocumentBatchReader::DocumentBatchReader(std::vector<std::string> inputs)
    : m_inputs(std::move(inputs)),
      m_batches(k_batches),
      m_ready(std::make_unique<Queue>()),
      m_free(std::make_unique<Queue>()),
      m_reader(std::make_unique<Reader>(m_inputs, *m_ready, *m_free)) {
  for (DocumentBatch& batch : m_batches) {
    m_free->push(&batch);
  }
  m_thread = std::thread([this] {
    try {
      m_reader->run();
    } catch (...) {
      m_error = std::current_exception();
      m_ready->stop();
    }
  });
}

DocumentBatchReader::~DocumentBatchReader() {
  m_free->stop();
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

DocumentBatch* DocumentBatchReader::next() {
  if (m_done) {
    return nullptr;
  }
  DocumentBatch* batch = m_ready->pop();
  if (batch == nullptr) {
    m_done = true;
    // Only a failed reader stops the queue; its exception was stored before.
    m_thread.join();
    std::rethrow_exception(m_error);
  }
  m_done = batch->last;
  return batch;
}

void DocumentBatchReader::give_back(DocumentBatch* batch) {
  m_free->push(batch);
}

bool DocumentBatchReader::ready() const {
  return !m_ready->empty();
}

}  // namespace dfhook::io
