#include "hookrelay/json_document.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_stack.hpp>

#include <bit>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace hookrelay {

namespace json = boost::json;
using Kind = JsonRef::Kind;

namespace {

constexpr std::uint8_t tag(Kind kind) noexcept {
    return static_cast<std::uint8_t>(kind);
}

}  // namespace

// Boost.JSON's tokenizer calls these (see boost::json::basic_parser); each value becomes one
// node, a container's node learns its size and end when it closes.
struct JsonDocumentBuilder {
    static constexpr std::size_t max_object_size = std::numeric_limits<std::uint32_t>::max();
    static constexpr std::size_t max_array_size = std::numeric_limits<std::uint32_t>::max();
    static constexpr std::size_t max_key_size = std::numeric_limits<std::uint32_t>::max();
    static constexpr std::size_t max_string_size = std::numeric_limits<std::uint32_t>::max();

    // A constructor, not aggregate initialization: basic_parser builds its handler with
    // parentheses, which clang before 16 does not accept for an aggregate.
    JsonDocumentBuilder(JsonDocument& d, std::size_t memory_limit) : doc(d), limit(memory_limit) {}

    JsonDocument& doc;
    std::size_t limit;
    bool too_large = false;
    std::vector<std::uint32_t> open;  ///< the containers not closed yet, innermost last
    std::size_t string_start = 0;     ///< where the string being read began in doc.escaped_
    bool in_string = false;

    bool add(std::uint8_t kind, std::uint32_t size, std::uint64_t data, json::error_code& ec,
             std::uint8_t first = 0) {
        auto& nodes = doc.nodes_;
        if (nodes.size() == nodes.capacity() && !grow(ec)) return false;
        nodes.push_back({kind, first, size, data});
        return true;
    }

    // Stops the parse for the memory limit.
    bool refuse(json::error_code& ec) {
        too_large = true;
        ec = json::error::exception;  // any error stops the parse; too_large says which
        return false;
    }

    // Doubles the node array within the limit, counting the old array too while both are held.
    bool grow(json::error_code& ec) {
        auto& nodes = doc.nodes_;
        const std::size_t used = doc.memory();
        const std::size_t room = limit > used ? (limit - used) / sizeof(JsonDocument::Node) : 0;
        const std::size_t wanted = std::max<std::size_t>(nodes.capacity() * 2, 64);
        const std::size_t capacity =
            std::min({wanted, room, std::size_t{std::numeric_limits<std::uint32_t>::max()}});
        if (capacity <= nodes.size()) return refuse(ec);
        nodes.reserve(capacity);
        return true;
    }

    bool begin_container(Kind kind, json::error_code& ec) {
        open.push_back(static_cast<std::uint32_t>(doc.nodes_.size()));
        return add(tag(kind), 0, 0, ec);
    }

    bool end_container(std::size_t n) {
        auto& node = doc.nodes_[open.back()];
        open.pop_back();
        node.size = static_cast<std::uint32_t>(n);
        node.data = doc.nodes_.size();
        return true;
    }

    // A string split into parts (escapes, or a text fed in pieces) is copied into escaped_;
    // one that arrives whole is a view into the input, of which text_ is a copy.
    void string_part(json::string_view part, json::error_code& ec) {
        auto& escaped = doc.escaped_;
        if (!in_string) {
            string_start = escaped.size();
            in_string = true;
        }
        if (escaped.capacity() - escaped.size() < part.size() && !grow_escaped(part.size(), ec)) {
            return;
        }
        escaped.insert(escaped.end(), part.data(), part.data() + part.size());
    }

    bool grow_escaped(std::size_t more, json::error_code& ec) {
        auto& escaped = doc.escaped_;
        // The old buffer is held until the new one has its bytes.
        const std::size_t used = doc.memory();
        const std::size_t room = limit > used ? limit - used : 0;
        const std::size_t needed = escaped.size() + more;
        const std::size_t capacity = std::min(std::max(needed, escaped.capacity() * 2), room);
        if (capacity < needed) return refuse(ec);
        escaped.reserve(capacity);  // a vector reserves exactly that
        return true;
    }

    bool string_end(std::uint8_t kind, json::string_view last, json::error_code& ec) {
        const auto input = reinterpret_cast<std::uintptr_t>(doc.text_.data());
        const auto at = reinterpret_cast<std::uintptr_t>(last.data());
        if (!in_string && at >= input && at + last.size() <= input + doc.text_.size()) {
            return add(kind, static_cast<std::uint32_t>(last.size()), at - input, ec,
                       last.empty() ? 0 : static_cast<std::uint8_t>(last[0]));
        }
        string_part(last, ec);
        if (ec) return false;
        in_string = false;
        const auto size = doc.escaped_.size() - string_start;
        const auto first = size == 0 ? 0 : static_cast<std::uint8_t>(doc.escaped_[string_start]);
        return add(kind, static_cast<std::uint32_t>(size), string_start | JsonDocument::k_escaped,
                   ec, first);
    }

    bool on_document_begin(json::error_code&) { return true; }
    bool on_document_end(json::error_code&) { return true; }
    bool on_object_begin(json::error_code& ec) { return begin_container(Kind::object, ec); }
    bool on_object_end(std::size_t n, json::error_code&) { return end_container(n); }
    bool on_array_begin(json::error_code& ec) { return begin_container(Kind::array, ec); }
    bool on_array_end(std::size_t n, json::error_code&) { return end_container(n); }
    bool on_key_part(json::string_view part, std::size_t, json::error_code& ec) {
        string_part(part, ec);
        return !ec;
    }
    bool on_key(json::string_view part, std::size_t, json::error_code& ec) {
        return string_end(JsonDocument::k_key, part, ec);
    }
    bool on_string_part(json::string_view part, std::size_t, json::error_code& ec) {
        string_part(part, ec);
        return !ec;
    }
    bool on_string(json::string_view part, std::size_t, json::error_code& ec) {
        return string_end(tag(Kind::string), part, ec);
    }
    bool on_number_part(json::string_view, json::error_code&) { return true; }
    bool on_int64(std::int64_t v, json::string_view, json::error_code& ec) {
        return add(tag(Kind::int64), 0, std::bit_cast<std::uint64_t>(v), ec);
    }
    bool on_uint64(std::uint64_t v, json::string_view, json::error_code& ec) {
        return add(tag(Kind::uint64), 0, v, ec);
    }
    bool on_double(double v, json::string_view, json::error_code& ec) {
        return add(tag(Kind::double_), 0, std::bit_cast<std::uint64_t>(v), ec);
    }
    bool on_bool(bool v, json::error_code& ec) { return add(tag(Kind::boolean), 0, v, ec); }
    bool on_null(json::error_code& ec) { return add(tag(Kind::null), 0, 0, ec); }
    bool on_comment_part(json::string_view, json::error_code&) { return true; }
    bool on_comment(json::string_view, json::error_code&) { return true; }
};

std::shared_ptr<const JsonDocument> JsonDocument::parse(std::string_view text,
                                                        std::size_t memory_limit, Error& error,
                                                        std::size_t max_depth) {
    // The document keeps a copy of the text: most strings are read where they lie in it.
    if (text.size() > memory_limit) {
        error = Error::too_large;
        return nullptr;
    }
    auto doc = std::make_shared<JsonDocument>();
    doc->text_.assign(text.begin(), text.end());
    // About one node per 20 bytes of a real payload, and never more than half the room the text
    // leaves, so that strings with escapes have room too; grown within the limit past that.
    const auto room = memory_limit - text.size();
    doc->nodes_.reserve(std::min(text.size() / 16 + 16, room / 2 / sizeof(Node)));
    json::parse_options options;
    options.max_depth = max_depth;
    json::basic_parser<JsonDocumentBuilder> parser(options, *doc, memory_limit);
    json::error_code ec;
    // Parsed from the copy, so that the strings it hands over whole point into text_.
    const auto used = parser.write_some(false, doc->text_.data(), doc->text_.size(), ec);
    if (ec || used != text.size()) {
        error = parser.handler().too_large ? Error::too_large : Error::malformed;
        return nullptr;
    }
    return doc;
}

std::shared_ptr<const JsonDocument> JsonDocument::parse(std::string_view text) {
    Error error{};
    auto doc = parse(text, std::numeric_limits<std::size_t>::max(), error);
    if (!doc) throw std::invalid_argument("not JSON: " + std::string(text.substr(0, 80)));
    return doc;
}

std::size_t JsonDocument::memory() const noexcept {
    return text_.capacity() + escaped_.capacity() + nodes_.capacity() * sizeof(Node);
}

JsonRef JsonRef::member(std::string_view key) const noexcept {
    if (doc_ == nullptr) return {};
    const auto* nodes = doc_->nodes_.data();
    const auto& object = nodes[index_];
    if (object.kind != tag(Kind::object)) return {};
    const auto first = key.empty() ? std::uint8_t{0} : static_cast<std::uint8_t>(key[0]);
    // Every member is looked at: the last of duplicate keys wins.
    std::uint32_t found = 0;  // the root is nobody's member
    for (auto i = index_ + 1; i < object.data;) {
        const auto& k = nodes[i];
        if (k.size == key.size() && k.first == first &&
            std::memcmp(doc_->text_data(k), key.data(), key.size()) == 0) {
            found = i + 1;
        }
        i = JsonRef(doc_, i + 1).next();
    }
    return found == 0 ? JsonRef{} : JsonRef(doc_, found);
}

JsonRef JsonRef::element(std::size_t index) const noexcept {
    if (!is_array() || index >= size()) return {};
    std::uint32_t i = index_ + 1;
    for (std::size_t n = 0; n < index; ++n) i = JsonRef(doc_, i).next();
    return JsonRef(doc_, i);
}

std::size_t JsonRef::size() const noexcept {
    if (doc_ == nullptr) return 0;
    const auto& node = doc_->nodes_[index_];
    return node.kind == tag(Kind::array) || node.kind == tag(Kind::object) ? node.size : 0;
}

std::optional<bool> JsonRef::boolean() const noexcept {
    if (doc_ == nullptr || kind() != Kind::boolean) return std::nullopt;
    return doc_->nodes_[index_].data != 0;
}

std::optional<std::int64_t> JsonRef::int64() const noexcept {
    if (doc_ == nullptr) return std::nullopt;
    const auto& node = doc_->nodes_[index_];
    if (node.kind == tag(Kind::int64)) return std::bit_cast<std::int64_t>(node.data);
    if (node.kind == tag(Kind::uint64) &&
        node.data <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return static_cast<std::int64_t>(node.data);
    }
    return std::nullopt;
}

std::optional<std::uint64_t> JsonRef::uint64() const noexcept {
    if (doc_ == nullptr || kind() != Kind::uint64) return std::nullopt;
    return doc_->nodes_[index_].data;
}

std::optional<double> JsonRef::double_() const noexcept {
    if (doc_ == nullptr || kind() != Kind::double_) return std::nullopt;
    return std::bit_cast<double>(doc_->nodes_[index_].data);
}

JsonRef::Elements JsonRef::elements() const noexcept {
    if (!is_array()) return {nullptr, 0, 0};
    return {doc_, index_ + 1, next()};
}

JsonRef::Members JsonRef::members() const noexcept {
    if (!is_object()) return {nullptr, 0, 0};
    return {doc_, index_ + 1, next()};
}

namespace {

// Pushes `v` as Boost.JSON's parser would have, so that the value (duplicate keys included)
// and its text are what a Boost.JSON DOM of the same input gave.
void push(const JsonRef& v, json::value_stack& stack) {
    switch (v.kind()) {
        case Kind::null:
            stack.push_null();
            break;
        case Kind::boolean:
            stack.push_bool(*v.boolean());
            break;
        case Kind::int64:
            stack.push_int64(*v.int64());
            break;
        case Kind::uint64:
            stack.push_uint64(*v.uint64());
            break;
        case Kind::double_:
            stack.push_double(*v.double_());
            break;
        case Kind::string:
            stack.push_string(*v.string());
            break;
        case Kind::array:
            for (const JsonRef e : v.elements()) push(e, stack);
            stack.push_array(v.size());
            break;
        case Kind::object:
            for (const auto [key, value] : v.members()) {
                stack.push_key(key);
                push(value, stack);
            }
            stack.push_object(v.size());
            break;
    }
}

}  // namespace

std::string JsonRef::serialize() const {
    if (doc_ == nullptr) return {};
    json::value_stack stack;
    stack.reset();
    push(*this, stack);
    return json::serialize(stack.release());
}

}  // namespace hookrelay
