// JsonWriter and append_json_string write what boost::json::serialize writes for the same values:
// answers and stored values written directly read back, and read the same, as before.
#include <hookrelay/json_writer.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cstdint>
#include <limits>
#include <string>

namespace hookrelay {
namespace {

std::string written(std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out;
}

// Every byte, alone and at every position of texts of every length up to and past the
// eight-bytes-at-a-time scan (control characters, '"', '\\', DEL, bytes that are not UTF-8).
TEST(JsonWriter, EscapesEveryByteAsBoostJsonDoes) {
    for (int b = 0; b < 256; ++b) {
        const char c = static_cast<char>(b);
        const std::string alone(1, c);
        EXPECT_EQ(written(alone), boost::json::serialize(boost::json::string(alone))) << b;
        // Every length up to 19: the scan's last few bytes are padded to eight.
        for (std::size_t size = 2; size <= 19; ++size) {
            for (std::size_t at = 0; at < size; ++at) {
                std::string text = std::string("0123456789abcdefghi").substr(0, size);
                text[at] = c;
                EXPECT_EQ(written(text), boost::json::serialize(boost::json::string(text)))
                    << b << " at " << at << " of " << size;
            }
        }
    }
    EXPECT_EQ(written(""), "\"\"");
    const std::string mixed = "tab\there \"quoted\" back\\slash \x01\x1f caf\xc3\xa9 \xff end";
    EXPECT_EQ(written(mixed), boost::json::serialize(boost::json::string(mixed)));
}

TEST(JsonWriter, WritesNestedValuesAsBoostSerializesThem) {
    JsonWriter w;
    w.begin_object();
    w.member("status", "accepted").member("empty", "");
    w.key("list").begin_array();
    w.value(std::uint64_t{7}).value(true).value(false).value("x");
    w.begin_object().key("inner").begin_array().end_array().end_object();
    w.begin_object().end_object();
    w.begin_array().begin_array().end_array().value(std::int64_t{-3}).end_array();
    w.end_array();
    w.member("max", std::numeric_limits<std::uint64_t>::max());
    w.member("min", std::numeric_limits<std::int64_t>::min());
    w.key("after").begin_object().member("a", std::uint64_t{0}).end_object();
    w.end_object();

    boost::json::object o;
    o["status"] = "accepted";
    o["empty"] = "";
    boost::json::array list;
    list.emplace_back(std::uint64_t{7});
    list.emplace_back(true);
    list.emplace_back(false);
    list.emplace_back("x");
    list.emplace_back(boost::json::object{{"inner", boost::json::array()}});
    list.emplace_back(boost::json::object());
    list.emplace_back(boost::json::array{boost::json::array(), std::int64_t{-3}});
    o["list"] = std::move(list);
    o["max"] = std::numeric_limits<std::uint64_t>::max();
    o["min"] = std::numeric_limits<std::int64_t>::min();
    o["after"] = boost::json::object{{"a", std::uint64_t{0}}};
    EXPECT_EQ(w.text(), boost::json::serialize(o));
}

TEST(JsonWriter, WritesOneValueAtTheTop) {
    EXPECT_EQ(JsonWriter().value("alone").take(), "\"alone\"");
    EXPECT_EQ(JsonWriter().begin_array().end_array().take(), "[]");
    EXPECT_EQ(JsonWriter().value(std::uint64_t{42}).take(), "42");
}

}  // namespace
}  // namespace hookrelay
