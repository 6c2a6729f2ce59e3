#include "ingest/parse_memory.hpp"

#include <algorithm>
#include <cstdint>

namespace hookrelay::ingest::detail {
namespace {

// The first chunk: small bodies (most deliveries are a few KiB) should not take a large one.
constexpr std::size_t k_min_chunk = 4096;
// Requests above this get a chunk of their own instead of abandoning the current chunk's rest.
constexpr std::size_t k_dedicated = ParseArena::k_max_chunk / 4;

std::size_t round_up_pow2(std::size_t n) noexcept {
    std::size_t p = k_min_chunk;
    while (p < n) p *= 2;
    return p;
}

unsigned char* align_up(unsigned char* p, std::size_t align) noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    const auto aligned = (address + align - 1) & ~(static_cast<std::uintptr_t>(align) - 1);
    return p + (aligned - address);
}

bool over_aligned(std::size_t align) noexcept {
    return align > __STDCPP_DEFAULT_NEW_ALIGNMENT__;
}

}  // namespace

ParseArena::ParseArena(std::size_t limit, std::size_t size_hint, ParseArena** self)
    : limit_(limit),
      // A parsed body needs about one to three times its size; whole powers of two keep the
      // chunks in the allocator's exact size classes.
      next_chunk_size_(round_up_pow2(std::min(size_hint, k_max_chunk))) {
    *self = this;
}

ParseArena::~ParseArena() {
    while (chunks_ != nullptr) {
        Chunk* next = chunks_->next;
        ::operator delete(chunks_);
        chunks_ = next;
    }
}

void ParseArena::charge(std::size_t bytes) {
    if (used_ > limit_ || bytes > limit_ - used_) throw ParseMemoryExceeded{};
    used_ += bytes;
}

void ParseArena::release(std::size_t bytes) noexcept {
    used_ -= std::min(bytes, used_);
}

ParseArena::Chunk* ParseArena::new_chunk(std::size_t size) {
    charge(size);
    void* memory = nullptr;
    try {
        memory = ::operator new(size);
    } catch (...) {
        release(size);
        throw;
    }
    auto* chunk = static_cast<Chunk*>(memory);
    chunk->next = chunks_;
    chunk->size = size;
    chunks_ = chunk;
    return chunk;
}

void* ParseArena::do_allocate(std::size_t bytes, std::size_t align) {
    if (next_ != nullptr) {
        unsigned char* p = align_up(next_, align);
        const auto padding = static_cast<std::size_t>(p - next_);
        if (padding <= avail_ && bytes <= avail_ - padding) {
            next_ = p + bytes;
            avail_ -= padding + bytes;
            return p;
        }
    }
    // Room for the header, the request and its worst-case alignment padding.
    const std::size_t needed = sizeof(Chunk) + bytes + align;
    if (needed < bytes) throw ParseMemoryExceeded{};  // overflow
    if (needed > k_dedicated) {
        Chunk* chunk = new_chunk(needed);
        return align_up(reinterpret_cast<unsigned char*>(chunk + 1), align);
    }
    std::size_t size = next_chunk_size_;
    while (size < needed) size *= 2;
    Chunk* chunk = new_chunk(size);
    next_chunk_size_ = std::min(size * 2, k_max_chunk);
    next_ = reinterpret_cast<unsigned char*>(chunk + 1);
    avail_ = size - sizeof(Chunk);
    unsigned char* p = align_up(next_, align);
    avail_ -= static_cast<std::size_t>(p - next_) + bytes;
    next_ = p + bytes;
    return p;
}

void* ParseArena::Scratch::do_allocate(std::size_t bytes, std::size_t align) {
    arena_.charge(bytes);
    try {
        return over_aligned(align) ? ::operator new(bytes, std::align_val_t(align))
                                   : ::operator new(bytes);
    } catch (...) {
        arena_.release(bytes);
        throw;
    }
}

void ParseArena::Scratch::do_deallocate(void* p, std::size_t bytes, std::size_t align) {
    if (over_aligned(align)) {
        ::operator delete(p, std::align_val_t(align));
    } else {
        ::operator delete(p);
    }
    arena_.release(bytes);
}

ParseStorage make_parse_arena(std::size_t limit, std::size_t size_hint) {
    ParseStorage out;
    out.storage = boost::json::make_shared_resource<ParseArena>(limit, size_hint, &out.arena);
    return out;
}

}  // namespace hookrelay::ingest::detail
