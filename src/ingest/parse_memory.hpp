// Memory for parsing one untrusted JSON body. Everything the parse allocates (the parsed value,
// the parser's temporary stack, a decoded form body) is charged against one limit, so a hostile
// body cannot make one parse use more than that, however its JSON is shaped.
#pragma once

#include <boost/json/memory_resource.hpp>
#include <boost/json/storage_ptr.hpp>

#include <cstddef>
#include <new>
#include <type_traits>

namespace hookrelay::ingest::detail {

/// Thrown by ParseArena (and its scratch resource) when a charge would exceed the limit.
struct ParseMemoryExceeded final : std::bad_alloc {
    const char* what() const noexcept override { return "parse memory limit exceeded"; }
};

/// The memory resource a parsed payload lives in: a bump allocator over heap chunks that is
/// freed all at once when the last value using it goes (values keep it alive through their
/// storage_ptr). Chunks grow from a size fitted to the body up to k_max_chunk, so at most one
/// chunk is partly unused; a request larger than a chunk gets a chunk of its own.
///
/// Every chunk, every scratch() allocation and every charge() counts against `limit`; the one
/// that would pass it throws ParseMemoryExceeded and leaves nothing charged. seal() lifts the
/// limit once the parse is done, so later use of the value cannot throw.
///
/// Not thread-safe while being filled; a finished, const value may be read from any thread.
class ParseArena final : public boost::json::memory_resource {
  public:
    /// Largest chunk taken from the heap at once (except for single larger requests).
    static constexpr std::size_t k_max_chunk = 1024 * 1024;

    /// `size_hint`: the body size, which sizes the first chunk. Sets `*self` to this (a
    /// storage_ptr made by make_parse_arena() hides the resource it owns).
    ParseArena(std::size_t limit, std::size_t size_hint, ParseArena** self);
    ~ParseArena() override;
    ParseArena(const ParseArena&) = delete;
    ParseArena& operator=(const ParseArena&) = delete;

    /// Counts `bytes` the parse holds outside the arena; throws ParseMemoryExceeded.
    void charge(std::size_t bytes);
    /// Gives back a charge().
    void release(std::size_t bytes) noexcept;
    /// Removes the limit.
    void seal() noexcept { limit_ = static_cast<std::size_t>(-1); }
    /// Bytes charged now: chunks (used or not), scratch memory and charge()s.
    std::size_t used() const noexcept { return used_; }

    /// Heap memory for the parser's temporary stack, charged to this arena while allocated.
    boost::json::memory_resource& scratch() noexcept { return scratch_; }

  private:
    class Scratch final : public boost::json::memory_resource {
      public:
        explicit Scratch(ParseArena& arena) : arena_(arena) {}

      private:
        void* do_allocate(std::size_t bytes, std::size_t align) override;
        void do_deallocate(void* p, std::size_t bytes, std::size_t align) override;
        bool do_is_equal(const memory_resource& other) const noexcept override {
            return this == &other;
        }
        ParseArena& arena_;
    };

    struct Chunk {
        Chunk* next;
        std::size_t size;  ///< bytes, this header included
    };

    void* do_allocate(std::size_t bytes, std::size_t align) override;
    void do_deallocate(void*, std::size_t, std::size_t) override {}
    bool do_is_equal(const memory_resource& other) const noexcept override {
        return this == &other;
    }
    Chunk* new_chunk(std::size_t size);

    std::size_t limit_;
    std::size_t used_ = 0;
    Chunk* chunks_ = nullptr;
    unsigned char* next_ = nullptr;  ///< free space of the current chunk
    std::size_t avail_ = 0;
    std::size_t next_chunk_size_;
    Scratch scratch_{*this};
};

/// A storage_ptr that owns a new ParseArena, and that arena.
struct ParseStorage {
    boost::json::storage_ptr storage;
    ParseArena* arena = nullptr;
};
ParseStorage make_parse_arena(std::size_t limit, std::size_t size_hint);

}  // namespace hookrelay::ingest::detail

// The arena frees everything at once: values in it skip destroying their elements one by one.
template <>
struct boost::json::is_deallocate_trivial<hookrelay::ingest::detail::ParseArena> : std::true_type {
};
