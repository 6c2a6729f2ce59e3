#include "app/logging.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hookrelay::app {
namespace {

using testing::HasSubstr;
using testing::MatchesRegex;
using testing::Not;

// 2026-11-24T23:10:01.123Z
const auto k_time = spdlog::log_clock::time_point(std::chrono::seconds(1'795'561'801) +
                                                  std::chrono::milliseconds(123));

// Local time in the text format (POSIX regular expressions, as gtest uses on Linux).
const std::string k_text_timestamp = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}";
const std::string k_text_offset = "[+-][0-9]{2}:[0-9]{2}";

std::string format_line(LogFormat format, std::string_view text,
                        spdlog::level::level_enum level = spdlog::level::info,
                        spdlog::log_clock::time_point time = k_time) {
    const spdlog::details::log_msg msg(time, spdlog::source_loc{}, "hookrelay", level,
                                       spdlog::string_view_t(text.data(), text.size()));
    spdlog::memory_buf_t buf;
    make_log_formatter(format)->format(msg, buf);
    return {buf.data(), buf.size()};
}

// Parses one JSON line: exactly one object followed by a single '\n'.
boost::json::object json_line(std::string_view text,
                              spdlog::level::level_enum level = spdlog::level::info) {
    const auto line = format_line(LogFormat::json, text, level);
    EXPECT_FALSE(line.empty());
    EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
    boost::system::error_code ec;
    auto value = boost::json::parse(line, ec);
    EXPECT_FALSE(ec) << ec.message() << " in " << line;
    EXPECT_TRUE(value.is_object()) << line;
    return value.is_object() ? value.as_object() : boost::json::object{};
}

std::string str(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || !v->is_string()) return "<missing>";
    return std::string(v->as_string());
}

TEST(ParseLogFormat, AcceptsTextAndJsonWhateverTheTerminal) {
    EXPECT_EQ(parse_log_format("text", false), LogFormat::text);
    EXPECT_EQ(parse_log_format("text", true), LogFormat::text);
    EXPECT_EQ(parse_log_format("json", false), LogFormat::json);
    EXPECT_EQ(parse_log_format("json", true), LogFormat::json);
}

TEST(ParseLogFormat, AutoIsTextOnATerminalAndJsonOtherwise) {
    EXPECT_EQ(parse_log_format("auto", true), LogFormat::text);
    EXPECT_EQ(parse_log_format("auto", false), LogFormat::json);
}

TEST(ParseLogFormat, RejectsAnythingElse) {
    EXPECT_EQ(parse_log_format("", false), std::nullopt);
    EXPECT_EQ(parse_log_format("JSON", false), std::nullopt);
    EXPECT_EQ(parse_log_format("logfmt", true), std::nullopt);
}

TEST(JsonLog, HasTimestampLevelAndMessage) {
    const auto o = json_line("listening on 127.0.0.1:8080");
    EXPECT_EQ(str(o, "ts"), "2026-11-24T23:10:01.123Z");
    EXPECT_EQ(str(o, "level"), "info");
    EXPECT_EQ(str(o, "msg"), "listening on 127.0.0.1:8080");
    EXPECT_EQ(o.size(), 3u);
}

TEST(JsonLog, StartsWithTheFixedFieldsInOrder) {
    EXPECT_EQ(format_line(LogFormat::json, "hi"),
              "{\"ts\":\"2026-11-24T23:10:01.123Z\",\"level\":\"info\",\"msg\":\"hi\"}\n");
}

TEST(JsonLog, PadsMillisecondsAndDates) {
    const auto t = spdlog::log_clock::time_point(std::chrono::seconds(86'400 * 31 + 3'661) +
                                                 std::chrono::milliseconds(7));
    const auto line = format_line(LogFormat::json, "x", spdlog::level::info, t);
    EXPECT_THAT(line, HasSubstr(R"("ts":"1970-02-01T01:01:01.007Z")"));
}

TEST(JsonLog, NamesEveryLevel) {
    EXPECT_EQ(str(json_line("m", spdlog::level::trace), "level"), "trace");
    EXPECT_EQ(str(json_line("m", spdlog::level::debug), "level"), "debug");
    EXPECT_EQ(str(json_line("m", spdlog::level::warn), "level"), "warning");
    EXPECT_EQ(str(json_line("m", spdlog::level::err), "level"), "error");
    EXPECT_EQ(str(json_line("m", spdlog::level::critical), "level"), "critical");
}

TEST(JsonLog, LiftsTheDaemonsKeyValuePairsIntoFields) {
    const std::string msg =
        "delivery=72d3162e-cc78-11e3-81ab-4c9367dc0958 trigger=17 rule=build-main jenkins=ci "
        "job=folder/app queued";
    const auto o = json_line(msg);
    EXPECT_EQ(str(o, "msg"), msg);
    EXPECT_EQ(str(o, "delivery"), "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    EXPECT_EQ(str(o, "trigger"), "17");
    EXPECT_EQ(str(o, "rule"), "build-main");
    EXPECT_EQ(str(o, "jenkins"), "ci");
    EXPECT_FALSE(o.contains("job"));
}

TEST(JsonLog, LiftsValuesWithoutTrailingPunctuation) {
    const auto o = json_line("delivery=abc source=gh: store did not accept the delivery");
    EXPECT_EQ(str(o, "delivery"), "abc");
    EXPECT_EQ(str(o, "source"), "gh");
    EXPECT_EQ(str(o, "msg"), "delivery=abc source=gh: store did not accept the delivery");
}

TEST(JsonLog, LiftsOnlyFromTheLinesHeadNotFromWhatItQuotes) {
    // A rejected request's content type, path or parser error follows the head: a client
    // cannot make up fields with it.
    auto o = json_line(
        "source=gh client=1.2.3.4 remote=1.2.3.4:5 rejected 415: unsupported content type "
        "'a delivery=forged rule=forged'");
    EXPECT_EQ(str(o, "source"), "gh");
    EXPECT_FALSE(o.contains("delivery")) << boost::json::serialize(o);
    EXPECT_FALSE(o.contains("rule")) << boost::json::serialize(o);
    o = json_line("jenkins=ci: cannot claim due triggers: trigger=forged");
    EXPECT_EQ(str(o, "jenkins"), "ci");
    EXPECT_FALSE(o.contains("trigger"));
    EXPECT_FALSE(json_line("cannot read due triggers for jenkins=ci").contains("jenkins"));
}

TEST(JsonLog, KeepsTheFirstOccurrenceOfAKey) {
    const auto o = json_line("delivery=first source=gh rejected 400: body says delivery=second");
    EXPECT_EQ(str(o, "delivery"), "first");
}

TEST(JsonLog, IgnoresPartialWordsEmptyValuesAndOtherKeys) {
    const auto o = json_line("xdelivery=1 rule= source=: job=a event=push remote=1.2.3.4");
    EXPECT_EQ(o.size(), 3u) << boost::json::serialize(o);
}

TEST(JsonLog, EscapesQuotesBackslashesAndControlCharacters) {
    const std::string msg = "say \"hi\" \\ path\nsecond line\r\ttab \x01\x1f end";
    const auto line = format_line(LogFormat::json, msg);
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    EXPECT_THAT(line, HasSubstr(R"(\"hi\")"));
    EXPECT_THAT(line, HasSubstr(R"(\\ path\nsecond line\r\ttab \u0001\u001f end)"));
    EXPECT_EQ(str(json_line(msg), "msg"), msg);
}

TEST(JsonLog, EscapesLiftedValues) {
    const auto o = json_line("source=a\"b\\c\x02 rejected");
    EXPECT_EQ(str(o, "source"), "a\"b\\c\x02");
}

TEST(JsonLog, ReplacesInvalidUtf8SoTheLineStaysJson) {
    // Valid two-, three- and four-byte sequences survive; a lone continuation byte, a truncated
    // sequence, an overlong form and a surrogate each become U+FFFD per byte.
    const std::string msg =
        "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \x80 \xE2\x82 \xC0\xAF \xED\xA0\x80";
    const auto o = json_line(msg);
    EXPECT_EQ(str(o, "msg"),
              "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD "
              "\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TextLog, IsTimestampLevelMessage) {
    auto line = format_line(LogFormat::text, "delivery=abc queued", spdlog::level::warn);
    ASSERT_EQ(line.find('\n'), line.size() - 1);
    line.pop_back();
    EXPECT_THAT(line, MatchesRegex(k_text_timestamp + "\\.123" + k_text_offset +
                                   " warning delivery=abc queued"));
}

// Points fd 2 at a file for the life of the object; setup_logging() writes to stderr.
class CapturedStderr {
  public:
    CapturedStderr() : path_(std::filesystem::temp_directory_path() / unique_name()) {
        std::fflush(stderr);
        saved_ = ::dup(STDERR_FILENO);
        const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
    }
    ~CapturedStderr() {
        restore();
        std::filesystem::remove(path_);
    }
    CapturedStderr(const CapturedStderr&) = delete;
    CapturedStderr& operator=(const CapturedStderr&) = delete;

    /// Restores stderr and returns what was written meanwhile, one element per line.
    std::vector<std::string> lines() {
        restore();
        std::ifstream in(path_);
        std::vector<std::string> out;
        for (std::string line; std::getline(in, line);) out.push_back(line);
        return out;
    }

  private:
    static std::string unique_name() {
        std::ostringstream name;
        name << "hookrelay-logging-test-" << ::getpid() << '-'
             << std::chrono::steady_clock::now().time_since_epoch().count();
        return name.str();
    }
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        saved_ = -1;
    }

    std::filesystem::path path_;
    int saved_ = -1;
};

class SetupLogging : public testing::Test {
  protected:
    void TearDown() override { spdlog::set_default_logger(previous_); }

  private:
    std::shared_ptr<spdlog::logger> previous_ = spdlog::default_logger();
};

TEST_F(SetupLogging, JsonGoesToStderrAtTheGivenLevel) {
    CapturedStderr captured;
    setup_logging("info", LogFormat::json);
    spdlog::debug("delivery=d0 not shown");
    spdlog::info("delivery={} source={}: queued", "d1", "gh");
    spdlog::warn("jenkins={} is unavailable", "ci");
    const auto lines = captured.lines();
    ASSERT_EQ(lines.size(), 2u);
    const auto first = boost::json::parse(lines[0]).as_object();
    EXPECT_EQ(str(first, "msg"), "delivery=d1 source=gh: queued");
    EXPECT_EQ(str(first, "delivery"), "d1");
    EXPECT_EQ(str(first, "source"), "gh");
    const auto second = boost::json::parse(lines[1]).as_object();
    EXPECT_EQ(str(second, "level"), "warning");
    EXPECT_EQ(str(second, "jenkins"), "ci");
    EXPECT_EQ(spdlog::default_logger()->name(), "hookrelay");
}

TEST_F(SetupLogging, TextWithoutColorsWhenStderrIsNotATerminal) {
    CapturedStderr captured;
    setup_logging("debug", LogFormat::text);
    spdlog::debug("shown");
    const auto lines = captured.lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_THAT(lines[0],
                MatchesRegex(k_text_timestamp + "\\.[0-9]{3}" + k_text_offset + " debug shown"));
    EXPECT_THAT(lines[0], Not(HasSubstr("\x1b[")));
}

TEST_F(SetupLogging, CanBeCalledAgain) {
    CapturedStderr captured;
    setup_logging("info", LogFormat::text);
    setup_logging("info", LogFormat::json);
    spdlog::info("once");
    const auto lines = captured.lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(str(boost::json::parse(lines[0]).as_object(), "msg"), "once");
}

TEST_F(SetupLogging, LinesFromManyThreadsStayWhole) {
    constexpr int k_threads = 4;
    constexpr int k_per_thread = 250;
    CapturedStderr captured;
    setup_logging("info", LogFormat::json);
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([t] {
            for (int i = 0; i < k_per_thread; ++i) {
                spdlog::info("delivery=t{}-{} source=gh: a \"quoted\" line", t, i);
            }
        });
    }
    for (auto& t : threads) t.join();
    const auto lines = captured.lines();
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(k_threads * k_per_thread));
    for (const auto& line : lines) {
        boost::system::error_code ec;
        const auto v = boost::json::parse(line, ec);
        ASSERT_FALSE(ec) << line;
        EXPECT_THAT(str(v.as_object(), "delivery"), MatchesRegex("t[0-9]-[0-9]+"));
    }
}

}  // namespace
}  // namespace hookrelay::app
