// JSON text written directly, for answers and stored values that are written far more often than
// they change shape: no DOM of values to build and free. The output is byte for byte what
// boost::json::serialize writes for the same values in the same order (strings escaped as its
// serializer escapes them; bytes that are not UTF-8 go in verbatim).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace hookrelay {

/// Appends `text` as a JSON string: '"', '\\' and control characters escaped (\b \t \n \f \r,
/// else \u00xx), every other byte as it is.
void append_json_string(std::string& out, std::string_view text);

/// Writes one JSON value (objects and arrays nested as the calls open and close them). The caller
/// keeps the calls balanced and calls key() before each value inside an object; the writer only
/// places the commas and colons.
class JsonWriter {
  public:
    /// `capacity`: the bytes to reserve, when the caller can tell how long the text will be.
    explicit JsonWriter(std::size_t capacity = 0) { out_.reserve(capacity); }

    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    JsonWriter& key(std::string_view name);
    JsonWriter& value(std::string_view text);
    JsonWriter& value(const char* text) { return value(std::string_view(text)); }
    /// Any other pointer would otherwise be written as `true`.
    JsonWriter& value(const void*) = delete;
    JsonWriter& value(bool b);
    JsonWriter& value(std::uint64_t n);
    JsonWriter& value(std::int64_t n);
    /// `key(name).value(v)`.
    template <typename T>
    JsonWriter& member(std::string_view name, const T& v) {
        return key(name).value(v);
    }

    const std::string& text() const noexcept { return out_; }
    std::string take() noexcept { return std::move(out_); }

  private:
    void separate();

    std::string out_;
    bool comma_ = false;  ///< the next value or key follows a sibling
};

}  // namespace hookrelay
