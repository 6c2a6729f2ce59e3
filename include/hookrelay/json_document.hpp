// A parsed webhook payload, read-only: what the normalizers read and what `payload.*` paths in
// rules and templates reach. Built in one pass of Boost.JSON's tokenizer into a flat array of
// nodes (no per-value objects, no hash tables), since nothing ever changes a payload and most of
// it is never read: an 8.8 KB GitHub push parses in about a third of the time a Boost.JSON DOM
// takes (docs/performance.md, "A payload read where it lies").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay {

class JsonDocument;

/// One value in a JsonDocument, or none ("absent": a member that is not there, an element past
/// the end, a lookup on a value of another type). Every accessor accepts an absent or
/// wrongly-typed value and answers "absent" (an absent JsonRef, nullopt, 0) instead of throwing.
/// Cheap to copy; valid while its document lives.
class JsonRef {
  public:
    enum class Kind : std::uint8_t { null, boolean, int64, uint64, double_, string, array, object };

    JsonRef() = default;

    explicit operator bool() const noexcept { return doc_ != nullptr; }
    /// Precondition: present.
    Kind kind() const noexcept;
    bool is_object() const noexcept { return doc_ != nullptr && kind() == Kind::object; }
    bool is_array() const noexcept { return doc_ != nullptr && kind() == Kind::array; }

    /// The member `key` of an object; when a key appears more than once, the last one (as a
    /// Boost.JSON DOM kept it). Absent for anything but an object holding `key`.
    JsonRef member(std::string_view key) const noexcept;
    /// Element `index` of an array; absent past its end or for anything but an array.
    JsonRef element(std::size_t index) const noexcept;
    /// Elements of an array, members of an object; 0 for anything else.
    std::size_t size() const noexcept;

    /// The text of a string (a view into the document), else nullopt.
    std::optional<std::string_view> string() const noexcept;
    std::optional<bool> boolean() const noexcept;
    /// An integer that fits in int64_t (a uint64 above INT64_MAX does not), else nullopt.
    std::optional<std::int64_t> int64() const noexcept;
    /// A uint64 above INT64_MAX, else nullopt.
    std::optional<std::uint64_t> uint64() const noexcept;
    std::optional<double> double_() const noexcept;

    /// The value as JSON text, exactly as boost::json::serialize() writes it (so a double reads
    /// "1.5E0"); "" when absent.
    std::string serialize() const;

    /// Iterates an array's elements (nothing for anything else): `for (JsonRef e : v.elements())`.
    class Elements;
    Elements elements() const noexcept;

    /// Iterates an object's members in document order (nothing for anything else).
    class Members;
    Members members() const noexcept;

  private:
    friend class JsonDocument;
    JsonRef(const JsonDocument* doc, std::uint32_t index) noexcept : doc_(doc), index_(index) {}
    std::uint32_t next() const noexcept;  ///< the node after this value (and all it holds)

    const JsonDocument* doc_ = nullptr;
    std::uint32_t index_ = 0;
};

/// A parsed JSON text. Shared (an event and its copies hold one); immutable once parsed.
class JsonDocument {
  public:
    /// Default nesting limit: real payloads nest about ten levels.
    static constexpr std::size_t k_max_depth = 64;

    enum class Error { malformed, too_large };

    /// Parses `text` (one JSON value, any type, whitespace around it). The document holds at
    /// most `memory_limit` bytes (a copy of `text`, the strings that held escapes unescaped, and
    /// 16 bytes per value, key and container); a text needing more is refused with
    /// Error::too_large and nothing is kept.
    /// Error::malformed for invalid JSON (also invalid UTF-8, or nesting past `max_depth`).
    static std::shared_ptr<const JsonDocument> parse(std::string_view text,
                                                     std::size_t memory_limit, Error& error,
                                                     std::size_t max_depth = k_max_depth);
    /// For tests and tools: parses `text` with no memory limit; throws std::invalid_argument
    /// when it is not JSON.
    static std::shared_ptr<const JsonDocument> parse(std::string_view text);

    JsonRef root() const noexcept { return JsonRef(this, 0); }
    /// What the document holds, in bytes (the figure compared with the memory limit).
    std::size_t memory() const noexcept;

    struct Node {
        std::uint8_t kind;   ///< JsonRef::Kind, or k_key
        std::uint8_t first;  ///< string and key: the first byte (0 when empty), for lookups
        std::uint32_t size;  ///< string and key: length; array and object: elements, members
        std::uint64_t data;  ///< string and key: offset into text_ (or, with k_escaped, into
                             ///< escaped_); array and object: the index of the node after it;
                             ///< scalars: the value's bits
    };
    static constexpr std::uint8_t k_key = 0xff;
    static constexpr std::uint64_t k_escaped = std::uint64_t{1} << 63;

    JsonDocument() = default;  // for make_shared; use parse()

  private:
    friend class JsonRef;
    friend class JsonRef::Members;
    friend struct JsonDocumentBuilder;
    /// Where the text of a string or key node starts.
    const char* text_data(const Node& node) const noexcept {
        return node.data & k_escaped ? escaped_.data() + (node.data & ~k_escaped)
                                     : text_.data() + node.data;
    }
    /// The text of a string or key node.
    std::string_view text(const Node& node) const noexcept { return {text_data(node), node.size}; }

    std::vector<Node> nodes_;
    // Vectors, not strings: a vector's reserve() and assign() take exactly what is asked, which
    // the memory limit counts on.
    std::vector<char> text_;     ///< a copy of the parsed text: strings without escapes lie here
    std::vector<char> escaped_;  ///< the other strings and keys, unescaped
};

class JsonRef::Elements {
  public:
    class iterator {
      public:
        JsonRef operator*() const noexcept { return JsonRef(doc_, index_); }
        iterator& operator++() noexcept {
            index_ = JsonRef(doc_, index_).next();
            return *this;
        }
        bool operator==(const iterator& other) const noexcept { return index_ == other.index_; }

      private:
        friend class Elements;
        iterator(const JsonDocument* doc, std::uint32_t index) noexcept
            : doc_(doc), index_(index) {}
        const JsonDocument* doc_;
        std::uint32_t index_;
    };
    iterator begin() const noexcept { return {doc_, first_}; }
    iterator end() const noexcept { return {doc_, end_}; }

  private:
    friend class JsonRef;
    Elements(const JsonDocument* doc, std::uint32_t first, std::uint32_t end) noexcept
        : doc_(doc), first_(first), end_(end) {}
    const JsonDocument* doc_;
    std::uint32_t first_;
    std::uint32_t end_;
};

class JsonRef::Members {
  public:
    struct Member {
        std::string_view key;
        JsonRef value;
    };
    class iterator {
      public:
        Member operator*() const noexcept;
        iterator& operator++() noexcept {
            index_ = JsonRef(doc_, index_ + 1).next();
            return *this;
        }
        bool operator==(const iterator& other) const noexcept { return index_ == other.index_; }

      private:
        friend class Members;
        iterator(const JsonDocument* doc, std::uint32_t index) noexcept
            : doc_(doc), index_(index) {}
        const JsonDocument* doc_;
        std::uint32_t index_;  ///< the member's key node
    };
    iterator begin() const noexcept { return {doc_, first_}; }
    iterator end() const noexcept { return {doc_, end_}; }

  private:
    friend class JsonRef;
    Members(const JsonDocument* doc, std::uint32_t first, std::uint32_t end) noexcept
        : doc_(doc), first_(first), end_(end) {}
    const JsonDocument* doc_;
    std::uint32_t first_;
    std::uint32_t end_;
};

inline JsonRef::Kind JsonRef::kind() const noexcept {
    return static_cast<Kind>(doc_->nodes_[index_].kind);
}

inline std::uint32_t JsonRef::next() const noexcept {
    const auto& node = doc_->nodes_[index_];
    return node.kind == static_cast<std::uint8_t>(Kind::array) ||
                   node.kind == static_cast<std::uint8_t>(Kind::object)
               ? static_cast<std::uint32_t>(node.data)
               : index_ + 1;
}

inline std::optional<std::string_view> JsonRef::string() const noexcept {
    if (doc_ == nullptr) return std::nullopt;
    const auto& node = doc_->nodes_[index_];
    if (node.kind != static_cast<std::uint8_t>(Kind::string)) return std::nullopt;
    return doc_->text(node);
}

inline JsonRef::Members::Member JsonRef::Members::iterator::operator*() const noexcept {
    const auto& key = doc_->nodes_[index_];
    return {doc_->text(key), JsonRef(doc_, index_ + 1)};
}

}  // namespace hookrelay
